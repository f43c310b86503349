#if os(Linux)
import Glibc

/// The dotted-quad text of an IPv4 address in network byte order.
func ipv4Text(_ address: in_addr) -> String {
    let value = UInt32(bigEndian: address.s_addr)
    return "\(value >> 24).\((value >> 16) & 0xff).\((value >> 8) & 0xff).\(value & 0xff)"
}
#endif
