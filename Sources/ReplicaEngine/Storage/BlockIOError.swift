/// A failed block I/O: the operation, where, and the `errno` the system gave.
public struct BlockIOError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Which operation failed.
    public enum Operation: String, Sendable {
        case open, read, write, flush, discard, writeZeroes = "write-zeroes", size
        /// Finding which ranges hold data and which are holes (`SEEK_DATA`/`SEEK_HOLE`).
        case allocation
    }

    /// The operation.
    public var operation: Operation
    /// Byte offset of the request.
    public var offset: Int64
    /// Byte length of the request.
    public var length: Int64
    /// The `errno` value (EIO = 5, EINVAL = 22, ...).
    public var errno: Int32
    /// Extra words (the path, or why a range is refused).
    public var detail: String

    /// Creates an error.
    public init(operation: Operation, offset: Int64, length: Int64, errno: Int32, detail: String = "") {
        self.operation = operation
        self.offset = offset
        self.length = length
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        let what = detail.isEmpty ? "" : ": \(detail)"
        return "\(operation.rawValue) of \(length) bytes at offset \(offset) failed with errno \(errno) (\(Self.errnoName(errno)))\(what)"
    }

    package static func errnoName(_ code: Int32) -> String {
        switch code {
        case 1: "EPERM"
        case 2: "ENOENT"
        case 5: "EIO"
        case 9: "EBADF"
        case 13: "EACCES"
        case 19: "ENODEV"
        case 22: "EINVAL"
        case 28: "ENOSPC"
        case 30: "EROFS"
        case 95: "EOPNOTSUPP"
        default: "errno \(code)"
        }
    }
}
