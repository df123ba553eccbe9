#if canImport(Glibc)
import Glibc
#endif
import CReplicaLinux

/// A ``BlockTarget`` over a regular file or a block device, with `pread`/`pwrite`,
/// `fdatasync`, hole punching (files) or `BLKDISCARD`/`BLKZEROOUT` (devices), and optional
/// `O_DIRECT` (unaligned buffers then go through an aligned bounce buffer).
public final class FileBlockTarget: BlockTarget {
    /// The path that was opened.
    public let path: String
    /// Size in bytes (`st_size` or `BLKGETSIZE64`).
    public let size: Int64
    /// Logical block size (`BLKSSZGET` for devices, 512 for files).
    public let logicalBlockSize: Int
    /// True when the path is a block device.
    public let isBlockDevice: Bool
    /// True when opened with `O_DIRECT`.
    public let directIO: Bool
    private let descriptor: Int32

    /// The file's descriptor, unless it bypasses the page cache (`O_DIRECT`).
    public var pageCacheDescriptor: Int32? { directIO ? nil : descriptor }

    /// Opens `path` for reading and writing (or reading only).
    /// - Parameters:
    ///   - directIO: bypass the page cache with `O_DIRECT`.
    ///   - readOnly: open with `O_RDONLY`.
    /// - Throws: ``BlockIOError`` with operation `open` and the path.
    public init(path: String, directIO: Bool = false, readOnly: Bool = false) throws(BlockIOError) {
        var flags = (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC
        if directIO { flags |= CReplicaLinux_O_DIRECT() }
        let fd = open(path, flags)
        guard fd >= 0 else {
            throw BlockIOError(operation: .open, offset: 0, length: 0, errno: errno, detail: path)
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            close(fd)
            throw BlockIOError(operation: .size, offset: 0, length: 0, errno: code, detail: path)
        }
        let isBlock = (info.st_mode & S_IFMT) == S_IFBLK
        var bytes = UInt64(info.st_size)
        var sector: Int32 = 512
        if isBlock {
            let rc = CReplicaLinux_blkgetsize64(fd, &bytes)
            guard rc == 0 else {
                close(fd)
                throw BlockIOError(operation: .size, offset: 0, length: 0, errno: -rc, detail: "BLKGETSIZE64 on \(path)")
            }
            if CReplicaLinux_blksszget(fd, &sector) != 0 { sector = 512 }
        } else if (info.st_mode & S_IFMT) != S_IFREG {
            close(fd)
            throw BlockIOError(operation: .open, offset: 0, length: 0, errno: EINVAL, detail: "\(path) is neither a regular file nor a block device")
        }
        self.path = path
        self.descriptor = fd
        self.size = Int64(bytes)
        self.isBlockDevice = isBlock
        self.logicalBlockSize = Int(sector)
        self.directIO = directIO
    }

    deinit { close(descriptor) }

    private func needsBounce(_ address: UnsafeRawPointer?, _ count: Int, _ offset: Int64) -> Bool {
        guard directIO else { return false }
        let alignment = logicalBlockSize
        return Int(bitPattern: address) % alignment != 0 || count % alignment != 0 || offset % Int64(alignment) != 0
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(BlockIOError) {
        try checkRange(.read, offset: offset, length: Int64(buffer.count))
        if needsBounce(buffer.baseAddress, buffer.count, offset) {
            let (start, length) = alignedSpan(offset, buffer.count)
            let bounce = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 4096)
            defer { bounce.deallocate() }
            try readFully(bounce, at: start)
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: bounce[Int(offset - start)..<(Int(offset - start) + buffer.count)]))
            return
        }
        try readFully(buffer, at: offset)
    }

    private func alignedSpan(_ offset: Int64, _ count: Int) -> (Int64, Int) {
        let a = Int64(logicalBlockSize)
        let start = offset / a * a
        let end = (offset + Int64(count) + a - 1) / a * a
        return (start, Int(end - start))
    }

    private func readFully(_ buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(BlockIOError) {
        var done = 0
        while done < buffer.count {
            let n = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + Int64(done)))
            if n < 0 {
                if errno == EINTR { continue }
                throw BlockIOError(operation: .read, offset: offset, length: Int64(buffer.count), errno: errno, detail: path)
            }
            if n == 0 {
                UnsafeMutableRawBufferPointer(rebasing: buffer[done...]).initializeMemory(as: UInt8.self, repeating: 0)
                return
            }
            done += n
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws(BlockIOError) {
        try checkRange(.write, offset: offset, length: Int64(buffer.count))
        if needsBounce(buffer.baseAddress, buffer.count, offset) {
            let (start, length) = alignedSpan(offset, buffer.count)
            let bounce = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 4096)
            defer { bounce.deallocate() }
            try readFully(bounce, at: start)
            UnsafeMutableRawBufferPointer(rebasing: bounce[Int(offset - start)..<(Int(offset - start) + buffer.count)]).copyMemory(from: buffer)
            try writeFully(UnsafeRawBufferPointer(bounce), at: start)
            return
        }
        try writeFully(buffer, at: offset)
    }

    private func writeFully(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws(BlockIOError) {
        var done = 0
        while done < buffer.count {
            let n = pwrite(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + Int64(done)))
            if n < 0 {
                if errno == EINTR { continue }
                throw BlockIOError(operation: .write, offset: offset, length: Int64(buffer.count), errno: errno, detail: path)
            }
            done += n
        }
    }

    public func flush() throws(BlockIOError) {
        guard fdatasync(descriptor) == 0 else {
            throw BlockIOError(operation: .flush, offset: 0, length: 0, errno: errno, detail: path)
        }
    }

    /// Holes of a regular file, found with `SEEK_DATA`/`SEEK_HOLE` (a file system without them
    /// reports the whole file as data, and so does a block device).
    public func allocation(at offset: Int64, length: Int64) throws(BlockIOError) -> [AllocationExtent] {
        try checkRange(.allocation, offset: offset, length: length)
        guard length > 0 else { return [] }
        guard !isBlockDevice else { return [AllocationExtent(length: length, isHole: false)] }
        let end = offset + length
        var extents: [AllocationExtent] = []
        func add(_ count: Int64, hole: Bool) {
            guard count > 0 else { return }
            if let last = extents.last, last.isHole == hole {
                extents[extents.count - 1].length += count
            } else {
                extents.append(AllocationExtent(length: count, isHole: hole))
            }
        }
        var position = offset
        // Writes and discards meanwhile can move the boundaries under the search: past this
        // many steps the rest is reported as data (always a safe answer).
        var stepsLeft = 1 << 16
        while position < end {
            stepsLeft -= 1
            guard stepsLeft > 0 else {
                add(end - position, hole: false)
                break
            }
            let data = CReplicaLinux_seek_data(descriptor, position)
            if data == -Int64(ENXIO) {
                // Nothing but a hole up to the end of the file.
                add(end - position, hole: true)
                break
            }
            if data == -Int64(EINVAL) || data == -Int64(EOPNOTSUPP) {
                // The file system cannot tell: all data.
                add(end - position, hole: false)
                break
            }
            guard data >= 0 else {
                throw BlockIOError(operation: .allocation, offset: position, length: end - position, errno: Int32(-data), detail: "SEEK_DATA on \(path)")
            }
            if data > position {
                let holeEnd = min(data, end)
                add(holeEnd - position, hole: true)
                position = holeEnd
                continue
            }
            let hole = CReplicaLinux_seek_hole(descriptor, position)
            guard hole >= 0 else {
                throw BlockIOError(operation: .allocation, offset: position, length: end - position, errno: Int32(-hole), detail: "SEEK_HOLE on \(path)")
            }
            // (A hole found at `position` itself means the data just went: look again.)
            let dataEnd = min(max(hole, position), end)
            if dataEnd == position { continue }
            add(dataEnd - position, hole: false)
            position = dataEnd
        }
        return extents
    }

    public func discard(at offset: Int64, length: Int64) throws(BlockIOError) {
        try checkRange(.discard, offset: offset, length: length)
        guard length > 0 else { return }
        let rc = isBlockDevice
            ? CReplicaLinux_blkdiscard(descriptor, UInt64(offset), UInt64(length))
            : CReplicaLinux_punch_hole(descriptor, offset, length)
        if rc != 0, -rc != EOPNOTSUPP {
            throw BlockIOError(operation: .discard, offset: offset, length: length, errno: -rc, detail: path)
        }
    }

    public func writeZeroes(at offset: Int64, length: Int64) throws(BlockIOError) {
        try checkRange(.writeZeroes, offset: offset, length: length)
        guard length > 0 else { return }
        let rc = isBlockDevice
            ? CReplicaLinux_blkzeroout(descriptor, UInt64(offset), UInt64(length))
            : CReplicaLinux_punch_hole(descriptor, offset, length)
        guard rc != 0 else { return }
        // Fall back to writing zeroes where the kernel cannot do it for us.
        let chunk = 1 << 20
        let zeroes = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { zeroes.deallocate() }
        zeroes.initializeMemory(as: UInt8.self, repeating: 0)
        var done: Int64 = 0
        while done < length {
            let count = Int(min(Int64(chunk), length - done))
            try write(UnsafeRawBufferPointer(rebasing: zeroes[0..<count]), at: offset + done)
            done += Int64(count)
        }
    }
}
