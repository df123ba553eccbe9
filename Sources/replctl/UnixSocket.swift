#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Unix-domain stream sockets for the control channel between `replctl` and its daemon.
enum UnixSocket {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private static func address(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw Failure(description: "socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    /// Connects to `path`; nil when nothing answers there.
    static func connect(_ path: String) -> Int32? {
        guard var address = try? address(path) else { return nil }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        let rc = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Listens on `path` with mode 0600. A stale socket file is removed only when nothing answers on it.
    static func listen(_ path: String) throws -> Int32 {
        if FileManager.default.fileExists(atPath: path) {
            if let fd = connect(path) {
                close(fd)
                throw Failure(description: "a replctl daemon already answers on \(path)")
            }
            try? FileManager.default.removeItem(atPath: path)
        }
        var address = try address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        let previous = umask(0o177)
        defer { umask(previous) }
        let rc = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw Failure(description: "bind \(path): \(String(cString: strerror(errno)))")
        }
        chmod(path, 0o600)
        guard Glibc.listen(fd, 16) == 0 else { throw Failure(description: "listen \(path): \(String(cString: strerror(errno)))") }
        return fd
    }

    /// Reads one line (up to `limit` bytes). The control protocol sends one line per request
    /// and per answer, so reading ahead in blocks loses nothing.
    static func readLine(_ fd: Int32, limit: Int = 8 << 20) -> String? {
        var bytes: [UInt8] = []
        var block = [UInt8](repeating: 0, count: 65536)
        while bytes.count < limit {
            let n = block.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if let newline = block[0..<n].firstIndex(of: UInt8(ascii: "\n")) {
                bytes += block[0..<newline]
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes += block[0..<n]
        }
        return nil
    }

    /// Writes all of `text`.
    static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            bytes = bytes.dropFirst(n)
        }
    }
}
