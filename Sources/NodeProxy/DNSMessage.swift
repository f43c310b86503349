/// Why a DNS message could not be read (RFC 1035 §4). Every malformed input
/// yields one of these; the reader never traps on input.
package enum DNSMessageError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The message is shorter than the 12-byte header.
    case headerTooShort(length: Int)
    /// The message ends inside the field that starts at `offset`.
    case truncated(offset: Int)
    /// A label length byte at `offset` uses the reserved 0x40 or 0x80 label types.
    case badLabelLength(UInt8, offset: Int)
    /// A compression pointer at `offset` does not point strictly before the name
    /// part being read, so following it could loop.
    case pointerLoop(offset: Int)
    /// The name is longer than the 255 octets RFC 1035 §2.3.4 allows.
    case nameTooLong
    /// The message is a query but carries a number of questions other than one.
    case questionCount(Int)
    /// The message has the QR bit set: it is a response, not a query.
    case notAQuery

    package var description: String {
        switch self {
        case .headerTooShort(let length): return "message of \(length) bytes is shorter than the 12-byte header"
        case .truncated(let offset): return "message ends inside the field at offset \(offset)"
        case .badLabelLength(let byte, let offset): return "label length byte 0x\(String(byte, radix: 16)) at offset \(offset) uses a reserved label type"
        case .pointerLoop(let offset): return "compression pointer at offset \(offset) does not point backwards (a loop)"
        case .nameTooLong: return "name is longer than 255 octets"
        case .questionCount(let count): return "query has \(count) questions; exactly one is supported"
        case .notAQuery: return "message is a response, not a query"
        }
    }
}

/// A DNS resource record type (RFC 1035 §3.2.2, RFC 3596 for AAAA).
public struct DNSRecordType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let a = DNSRecordType(rawValue: 1)
    public static let cname = DNSRecordType(rawValue: 5)
    public static let txt = DNSRecordType(rawValue: 16)
    public static let aaaa = DNSRecordType(rawValue: 28)
    public static let srv = DNSRecordType(rawValue: 33)
    public static let any = DNSRecordType(rawValue: 255)

    public var description: String {
        switch self {
        case .a: return "A"
        case .cname: return "CNAME"
        case .txt: return "TXT"
        case .aaaa: return "AAAA"
        case .srv: return "SRV"
        case .any: return "ANY"
        default: return "TYPE\(rawValue)"
        }
    }
}

/// A DNS response code (RFC 1035 §4.1.1).
package enum DNSResponseCode: UInt8, Sendable, Hashable {
    case noError = 0
    case formatError = 1
    case serverFailure = 2
    case nameError = 3
    case notImplemented = 4
    case refused = 5
}

/// One question of a query: a name, a record type and a class.
///
/// `labels` are the name's labels exactly as sent (case preserved, so a
/// response echoes them unchanged); ``name`` is their dotted text.
public struct DNSQuestion: Sendable, Hashable {
    /// The labels of the name, without the root label.
    public var labels: [[UInt8]]
    public var type: DNSRecordType
    /// The class; 1 is IN.
    public var recordClass: UInt16

    /// The class of Internet names.
    public static let internetClass: UInt16 = 1

    public init(labels: [[UInt8]], type: DNSRecordType, recordClass: UInt16 = DNSQuestion.internetClass) {
        self.labels = labels
        self.type = type
        self.recordClass = recordClass
    }

    /// A question for a dotted name (a trailing dot is optional).
    public init(name: String, type: DNSRecordType, recordClass: UInt16 = DNSQuestion.internetClass) {
        let labels = name.split(separator: ".", omittingEmptySubsequences: true).map { Array($0.utf8) }
        self.init(labels: labels, type: type, recordClass: recordClass)
    }

    /// The name as dotted text without the trailing dot ("" for the root).
    public var name: String {
        labels.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".")
    }
}

/// The fixed 12-byte header of a DNS message (RFC 1035 §4.1.1).
package struct DNSHeader: Sendable, Hashable {
    package var id: UInt16
    package var flags: UInt16
    package var questionCount: UInt16
    package var answerCount: UInt16
    package var authorityCount: UInt16
    package var additionalCount: UInt16

    package static let length = 12

    package init(id: UInt16, flags: UInt16, questionCount: UInt16 = 0, answerCount: UInt16 = 0, authorityCount: UInt16 = 0, additionalCount: UInt16 = 0) {
        self.id = id
        self.flags = flags
        self.questionCount = questionCount
        self.answerCount = answerCount
        self.authorityCount = authorityCount
        self.additionalCount = additionalCount
    }

    package init(parsing bytes: [UInt8]) throws(DNSMessageError) {
        guard bytes.count >= Self.length else { throw .headerTooShort(length: bytes.count) }
        func word(_ index: Int) -> UInt16 { UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]) }
        self.init(id: word(0), flags: word(2), questionCount: word(4), answerCount: word(6), authorityCount: word(8), additionalCount: word(10))
    }

    /// QR: the message is a response.
    package var isResponse: Bool { flags & 0x8000 != 0 }
    /// The operation; 0 is a standard query.
    package var opcode: UInt8 { UInt8((flags >> 11) & 0x0f) }
    /// RD: the client asked for recursion.
    package var recursionDesired: Bool { flags & 0x0100 != 0 }
    /// TC: the message was truncated.
    package var truncated: Bool { flags & 0x0200 != 0 }
    /// The response code (low four bits).
    package var responseCode: UInt8 { UInt8(flags & 0x000f) }

    func write(into bytes: inout [UInt8]) {
        for word in [id, flags, questionCount, answerCount, authorityCount, additionalCount] {
            bytes.append(UInt8(word >> 8))
            bytes.append(UInt8(word & 0xff))
        }
    }
}

/// A parsed standard query: its header and its one question. Sections after the
/// question (an EDNS OPT record, for example) are not read.
package struct DNSQuery: Sendable, Hashable {
    package var header: DNSHeader
    package var question: DNSQuestion

    package init(header: DNSHeader, question: DNSQuestion) {
        self.header = header
        self.question = question
    }

    package init(parsing bytes: [UInt8]) throws(DNSMessageError) {
        let header = try DNSHeader(parsing: bytes)
        guard !header.isResponse else { throw .notAQuery }
        guard header.questionCount == 1 else { throw .questionCount(Int(header.questionCount)) }
        var reader = DNSReader(bytes: bytes, offset: DNSHeader.length)
        let labels = try reader.readName()
        let type = try reader.readUInt16()
        let recordClass = try reader.readUInt16()
        self.init(header: header, question: DNSQuestion(labels: labels, type: DNSRecordType(rawValue: type), recordClass: recordClass))
    }
}

/// Reads names and integers from a message, bounds-checked.
package struct DNSReader {
    package let bytes: [UInt8]
    /// Where the next read starts.
    package var offset: Int

    package init(bytes: [UInt8], offset: Int) {
        self.bytes = bytes
        self.offset = offset
    }

    /// The longest name on the wire, the root label included (RFC 1035 §2.3.4).
    static let maxNameLength = 255

    package mutating func readUInt16() throws(DNSMessageError) -> UInt16 {
        guard offset + 2 <= bytes.count else { throw .truncated(offset: offset) }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    /// Reads a name at `offset`, following compression pointers, and leaves
    /// `offset` after the name's bytes in place (after the first pointer, if any).
    ///
    /// Each pointer must point strictly before the start of the name part that
    /// holds it, so every jump lowers the read position and the walk ends.
    package mutating func readName() throws(DNSMessageError) -> [[UInt8]] {
        var labels: [[UInt8]] = []
        var position = offset
        var partStart = offset
        var resume: Int?
        var wireLength = 1
        while true {
            guard position < bytes.count else { throw .truncated(offset: position) }
            let length = bytes[position]
            switch length & 0xc0 {
            case 0x00:
                if length == 0 {
                    offset = resume ?? position + 1
                    return labels
                }
                let end = position + 1 + Int(length)
                guard end <= bytes.count else { throw .truncated(offset: position) }
                wireLength += 1 + Int(length)
                guard wireLength <= Self.maxNameLength else { throw .nameTooLong }
                labels.append(Array(bytes[(position + 1)..<end]))
                position = end
            case 0xc0:
                guard position + 1 < bytes.count else { throw .truncated(offset: position) }
                let target = Int(length & 0x3f) << 8 | Int(bytes[position + 1])
                guard target < partStart else { throw .pointerLoop(offset: position) }
                if resume == nil { resume = position + 2 }
                position = target
                partStart = target
            default:
                throw .badLabelLength(length, offset: position)
            }
        }
    }
}

/// An answer record for the question of a response: an A or AAAA address.
package struct DNSAddressRecord: Sendable, Hashable {
    package var type: DNSRecordType
    /// 4 bytes for A, 16 for AAAA.
    package var address: [UInt8]
    package var ttl: UInt32

    package init(type: DNSRecordType, address: [UInt8], ttl: UInt32) {
        self.type = type
        self.address = address
        self.ttl = ttl
    }
}

/// Builds responses to queries (RFC 1035 §4.1): the question echoed, answers
/// named by a compression pointer to it.
package enum DNSResponse {
    /// A response to `query` with `code` and `answers`; `authoritative` sets AA.
    /// Answers that would make the message longer than `maxLength` are left
    /// out and TC is set (RFC 1035 §4.1.1).
    package static func encode(answering query: DNSQuery, code: DNSResponseCode, answers: [DNSAddressRecord] = [],
                               authoritative: Bool = false, maxLength: Int = Int(UInt16.max)) -> [UInt8] {
        let questionLength = query.question.labels.reduce(1) { $0 + 1 + $1.count } + 4
        var room = maxLength - DNSHeader.length - questionLength
        let answers = answers.prefix { answer in
            room -= 12 + answer.address.count
            return room >= 0
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(DNSHeader.length + questionLength + answers.count * 28)
        var header = responseHeader(for: query.header, code: code, authoritative: authoritative,
                                    questionCount: 1, answerCount: UInt16(clamping: answers.count))
        if room < 0 { header.flags |= 0x0200 }
        header.write(into: &bytes)
        for label in query.question.labels {
            bytes.append(UInt8(label.count))
            bytes.append(contentsOf: label)
        }
        bytes.append(0)
        appendUInt16(query.question.type.rawValue, to: &bytes)
        appendUInt16(query.question.recordClass, to: &bytes)
        for answer in answers {
            bytes.append(contentsOf: [0xc0, UInt8(DNSHeader.length)])
            appendUInt16(answer.type.rawValue, to: &bytes)
            appendUInt16(DNSQuestion.internetClass, to: &bytes)
            appendUInt16(UInt16(answer.ttl >> 16), to: &bytes)
            appendUInt16(UInt16(answer.ttl & 0xffff), to: &bytes)
            appendUInt16(UInt16(answer.address.count), to: &bytes)
            bytes.append(contentsOf: answer.address)
        }
        return bytes
    }

    /// A response without a question section, for a query whose question could
    /// not be read (FORMERR) or whose operation is not supported (NOTIMP).
    package static func encode(answeringHeader header: DNSHeader, code: DNSResponseCode) -> [UInt8] {
        var bytes: [UInt8] = []
        responseHeader(for: header, code: code, authoritative: false, questionCount: 0, answerCount: 0).write(into: &bytes)
        return bytes
    }

    /// The flags of a response: QR, the query's opcode and RD, RA, AA if asked, and `code`.
    static func responseHeader(for query: DNSHeader, code: DNSResponseCode, authoritative: Bool, questionCount: UInt16, answerCount: UInt16) -> DNSHeader {
        var flags: UInt16 = 0x8000 | UInt16(query.opcode) << 11 | 0x0080 | UInt16(code.rawValue)
        if authoritative { flags |= 0x0400 }
        if query.recursionDesired { flags |= 0x0100 }
        return DNSHeader(id: query.id, flags: flags, questionCount: questionCount, answerCount: answerCount)
    }

    /// `message` with its ID replaced (nothing for a message shorter than two bytes).
    package static func replacingID(of message: [UInt8], with id: UInt16) -> [UInt8] {
        guard message.count >= 2 else { return message }
        var copy = message
        copy[0] = UInt8(id >> 8)
        copy[1] = UInt8(id & 0xff)
        return copy
    }

    private static func appendUInt16(_ value: UInt16, to bytes: inout [UInt8]) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xff))
    }
}
