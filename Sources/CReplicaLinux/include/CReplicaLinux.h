// Thin C helpers for what Swift cannot import directly: ioctl request macros,
// O_DIRECT (needs _GNU_SOURCE), fallocate flags, malloc tuning, the SSE4.2 CRC32C instruction,
// and splice(2) with pipes sized by F_SETPIPE_SZ (both _GNU_SOURCE).
#ifndef C_REPLICA_LINUX_H
#define C_REPLICA_LINUX_H

#include <stdint.h>
#include <stddef.h>

/// Size in bytes of the block device open on fd (BLKGETSIZE64). Returns 0 or -errno.
int CReplicaLinux_blkgetsize64(int fd, uint64_t *bytes);
/// Logical sector size of the block device open on fd (BLKSSZGET). Returns 0 or -errno.
int CReplicaLinux_blksszget(int fd, int *size);
/// Discard a byte range on a block device (BLKDISCARD). Returns 0 or -errno.
int CReplicaLinux_blkdiscard(int fd, uint64_t offset, uint64_t length);
/// Zero a byte range on a block device (BLKZEROOUT). Returns 0 or -errno.
int CReplicaLinux_blkzeroout(int fd, uint64_t offset, uint64_t length);
/// The O_DIRECT open flag.
int CReplicaLinux_O_DIRECT(void);
/// fallocate(PUNCH_HOLE | KEEP_SIZE). Returns 0 or -errno.
int CReplicaLinux_punch_hole(int fd, int64_t offset, int64_t length);
/// fallocate(ZERO_RANGE | KEEP_SIZE). Returns 0 or -errno.
int CReplicaLinux_zero_range(int fd, int64_t offset, int64_t length);
/// lseek(fd, offset, SEEK_DATA): where the first data at or after `offset` starts. Returns it
/// or -errno (-ENXIO: only a hole up to the end of the file).
int64_t CReplicaLinux_seek_data(int fd, int64_t offset);
/// lseek(fd, offset, SEEK_HOLE): where the first hole at or after `offset` starts (the end of
/// the file counts as one). Returns it or -errno.
int64_t CReplicaLinux_seek_hole(int fd, int64_t offset);
/// 1 when the CPU has the SSE4.2 crc32 instruction.
int CReplicaLinux_crc32c_hardware_available(void);
/// CRC-32C update with the hardware instruction (no pre/post inversion: raw register update).
/// Only call when CReplicaLinux_crc32c_hardware_available() returned 1.
uint32_t CReplicaLinux_crc32c_hardware(uint32_t crc, const void *data, size_t length);
/// glibc mallopt(M_MMAP_THRESHOLD, mmap_threshold) and mallopt(M_TRIM_THRESHOLD, trim_threshold).
/// Returns 1 when both were accepted.
int CReplicaLinux_set_malloc_thresholds(int mmap_threshold, int trim_threshold);
/// glibc mallopt(M_ARENA_MAX, arenas). Returns 1 when accepted.
int CReplicaLinux_set_malloc_arena_max(int arenas);

/// A pipe (close-on-exec) that holds at least `capacity` bytes (F_SETPIPE_SZ): fds[0] is the
/// read end, fds[1] the write end. Returns 0 or -errno (both ends closed on failure).
int CReplicaLinux_pipe_with_capacity(int fds[2], int capacity);
/// splice(2) of up to `length` bytes of `file` at `offset` into `pipe` (the page cache's pages
/// are referenced, not copied), not waiting for room in the pipe. Returns the bytes moved,
/// 0 at the end of the file, or -errno.
int64_t CReplicaLinux_splice_file_to_pipe(int file, int64_t offset, int pipe, size_t length);
/// splice(2) of up to `length` bytes from `pipe` to `socket` (waiting as the socket does);
/// `more`: more data follows (SPLICE_F_MORE). Returns the bytes moved or -errno.
int64_t CReplicaLinux_splice_pipe_to_socket(int pipe, int socket, size_t length, int more);
/// splice(2) of up to `length` bytes received on `socket` into `pipe` (the socket buffer's
/// pages are referenced, not copied): waits for data as the socket does, not for room in the
/// pipe. Returns the bytes moved, 0 when the peer ended the stream, or -errno (-EAGAIN: the
/// pipe has no free slot).
int64_t CReplicaLinux_splice_socket_to_pipe(int socket, int pipe, size_t length);
/// splice(2) of up to `length` bytes from `pipe` into `file` at `offset` (copied into the
/// file's pages as a write is). Returns the bytes moved or -errno.
int64_t CReplicaLinux_splice_pipe_to_file(int pipe, int file, int64_t offset, size_t length);

/// accept4(socket, NULL, NULL, SOCK_CLOEXEC): the new descriptor is close-on-exec from the
/// start (no window in which a handler started meanwhile inherits it). Returns it or -1 (errno).
int CReplicaLinux_accept_cloexec(int socket);

/// Names the calling thread (pthread_setname_np; the first 15 bytes are kept), for `top -H`,
/// `perf` and debuggers.
void CReplicaLinux_set_thread_name(const char *name);

#endif
