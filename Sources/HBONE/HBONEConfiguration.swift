import NIOCore
import NIOHTTP2

/// HTTP/2 flow-control and concurrency settings for HBONE connections.
///
/// The defaults are the mesh's wire facts (the same as Istio ztunnel): stream
/// window 4 MiB, connection window 16 MiB, max frame 1 MiB.
public struct HBONEHTTP2Settings: Sendable, Hashable {
    /// The initial (and target) flow-control window of every stream, in bytes.
    public var streamWindow: Int
    /// The target flow-control window of the whole connection, in bytes.
    public var connectionWindow: Int
    /// The largest frame payload accepted, in bytes.
    public var maxFrameSize: Int
    /// SETTINGS_MAX_CONCURRENT_STREAMS advertised to the peer.
    public var maxConcurrentStreams: Int
    /// Outbound bytes buffered per stream before the stream channel becomes unwritable.
    public var streamOutboundHighWatermark: Int
    /// Outbound bytes per stream below which the stream channel becomes writable again.
    public var streamOutboundLowWatermark: Int
    /// Carry the DATA frames of spliced streams (every stream of an ``HBONEServer``, and
    /// ``HBONEClient/tunnel(_:splicingWith:prelude:onClose:)``) between the connection and the
    /// spliced socket directly, instead of through NIOHTTP2's stream channels: the same frames
    /// on the wire for less CPU and latency per message. `false` uses NIOHTTP2 for all DATA.
    public var fastDataPath: Bool

    public init(
        streamWindow: Int = 4 << 20,
        connectionWindow: Int = 16 << 20,
        maxFrameSize: Int = 1 << 20,
        maxConcurrentStreams: Int = 200,
        streamOutboundHighWatermark: Int = 256 << 10,
        streamOutboundLowWatermark: Int = 128 << 10,
        fastDataPath: Bool = true
    ) {
        self.streamWindow = streamWindow
        self.connectionWindow = connectionWindow
        self.maxFrameSize = maxFrameSize
        self.maxConcurrentStreams = maxConcurrentStreams
        self.streamOutboundHighWatermark = streamOutboundHighWatermark
        self.streamOutboundLowWatermark = streamOutboundLowWatermark
        self.fastDataPath = fastDataPath
    }

    var initialSettings: HTTP2Settings {
        [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            HTTP2Setting(parameter: .initialWindowSize, value: streamWindow),
            HTTP2Setting(parameter: .maxFrameSize, value: maxFrameSize),
            HTTP2Setting(parameter: .enablePush, value: 0),
        ]
    }

    var connectionConfiguration: NIOHTTP2Handler.ConnectionConfiguration {
        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
        configuration.initialSettings = initialSettings
        configuration.targetWindowSize = connectionWindow
        return configuration
    }

    var streamConfiguration: NIOHTTP2Handler.StreamConfiguration {
        var configuration = NIOHTTP2Handler.StreamConfiguration()
        configuration.targetWindowSize = streamWindow
        configuration.outboundBufferSizeHighWatermark = streamOutboundHighWatermark
        configuration.outboundBufferSizeLowWatermark = streamOutboundLowWatermark
        return configuration
    }
}

/// Settings for an ``HBONEServer``; the defaults are the mesh's wire facts.
public struct HBONEServerConfiguration: Sendable {
    /// Where to listen (default `0.0.0.0:15008`).
    public var host: String
    /// The port to listen on; 0 picks a free one.
    public var port: Int
    /// HTTP/2 settings (200 concurrent streams by default).
    public var http2: HBONEHTTP2Settings
    /// How long an upstream connect may take before the stream is answered 503.
    public var upstreamConnectTimeout: TimeAmount
    /// How long draining connections may keep streams open after GOAWAY before they are closed.
    public var drainDeadline: TimeAmount
    /// Server-initiated keepalive PINGs (nil disables them).
    public var keepalive: HBONEKeepalive?
    /// Connects upstreams from inside the destination workload's network namespace when it holds it (in-pod capture).
    public var connector: (any WorkloadConnector)?

    public init(
        host: String = "0.0.0.0",
        port: Int = 15008,
        http2: HBONEHTTP2Settings = HBONEHTTP2Settings(),
        upstreamConnectTimeout: TimeAmount = .seconds(10),
        drainDeadline: TimeAmount = .seconds(5),
        keepalive: HBONEKeepalive? = HBONEKeepalive(),
        connector: (any WorkloadConnector)? = nil
    ) {
        self.connector = connector
        self.host = host
        self.port = port
        self.http2 = http2
        self.upstreamConnectTimeout = upstreamConnectTimeout
        self.drainDeadline = drainDeadline
        self.keepalive = keepalive
    }
}

/// HTTP/2 PING keepalive: a PING every `interval`, the connection is dropped when
/// no answer arrived within `timeout` (10 s and 20 s by default, as ztunnel).
public struct HBONEKeepalive: Sendable, Hashable {
    /// Time between PINGs.
    public var interval: TimeAmount
    /// How long to wait for a PING answer before dropping the connection.
    public var timeout: TimeAmount

    public init(interval: TimeAmount = .seconds(10), timeout: TimeAmount = .seconds(20)) {
        self.interval = interval
        self.timeout = timeout
    }
}

/// Settings for an ``HBONEClient`` and its connection pool; the defaults are the mesh's wire facts.
public struct HBONEClientConfiguration: Sendable {
    /// HTTP/2 settings of outgoing connections.
    public var http2: HBONEHTTP2Settings
    /// The most streams one pooled connection carries (fewer if the peer's SETTINGS_MAX_CONCURRENT_STREAMS says so).
    public var maxStreamsPerConnection: Int
    /// Time allowed for TCP connect, TLS handshake and the peer's first SETTINGS.
    public var connectTimeout: TimeAmount
    /// Keepalive PINGs on pooled connections (nil disables them).
    public var keepalive: HBONEKeepalive?
    /// A connection without streams for this long is closed and leaves the pool.
    public var idleTimeout: TimeAmount
    /// Bind each outgoing connection to its pool key's source IP (from `forwarding.source`, port 0), as
    /// ztunnel binds the source workload's address. The IP must be an address of this host; when it is
    /// not, opening a stream fails with ``HBONEError/sourceUnavailable(_:)``. `false` connects from any address.
    public var bindsSourceAddress: Bool
    /// Dials each connection from inside the source workload's network namespace (by the pool
    /// key's source address) when it holds it (in-pod capture); otherwise as `bindsSourceAddress` says.
    public var connector: (any WorkloadConnector)?

    public init(
        http2: HBONEHTTP2Settings = HBONEHTTP2Settings(maxConcurrentStreams: 100),
        maxStreamsPerConnection: Int = 100,
        connectTimeout: TimeAmount = .seconds(10),
        keepalive: HBONEKeepalive? = HBONEKeepalive(),
        idleTimeout: TimeAmount = .minutes(5),
        bindsSourceAddress: Bool = true,
        connector: (any WorkloadConnector)? = nil
    ) {
        self.connector = connector
        self.http2 = http2
        self.maxStreamsPerConnection = maxStreamsPerConnection
        self.connectTimeout = connectTimeout
        self.keepalive = keepalive
        self.idleTimeout = idleTimeout
        self.bindsSourceAddress = bindsSourceAddress
    }
}
