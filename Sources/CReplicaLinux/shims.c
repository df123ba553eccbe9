#include "CReplicaLinux.h"
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <unistd.h>

int CReplicaLinux_blkgetsize64(int fd, uint64_t *bytes) {
    return ioctl(fd, BLKGETSIZE64, bytes) == 0 ? 0 : -errno;
}

int CReplicaLinux_blksszget(int fd, int *size) {
    return ioctl(fd, BLKSSZGET, size) == 0 ? 0 : -errno;
}

int CReplicaLinux_blkdiscard(int fd, uint64_t offset, uint64_t length) {
    uint64_t range[2] = {offset, length};
    return ioctl(fd, BLKDISCARD, range) == 0 ? 0 : -errno;
}

int CReplicaLinux_blkzeroout(int fd, uint64_t offset, uint64_t length) {
    uint64_t range[2] = {offset, length};
    return ioctl(fd, BLKZEROOUT, range) == 0 ? 0 : -errno;
}

int CReplicaLinux_O_DIRECT(void) { return O_DIRECT; }

int CReplicaLinux_punch_hole(int fd, int64_t offset, int64_t length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) == 0 ? 0 : -errno;
}

int CReplicaLinux_zero_range(int fd, int64_t offset, int64_t length) {
    return fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, length) == 0 ? 0 : -errno;
}

int64_t CReplicaLinux_seek_data(int fd, int64_t offset) {
    off_t found = lseek(fd, offset, SEEK_DATA);
    return found < 0 ? -errno : found;
}

int64_t CReplicaLinux_seek_hole(int fd, int64_t offset) {
    off_t found = lseek(fd, offset, SEEK_HOLE);
    return found < 0 ? -errno : found;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

int CReplicaLinux_crc32c_hardware_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

__attribute__((target("sse4.2")))
uint32_t CReplicaLinux_crc32c_hardware(uint32_t crc, const void *data, size_t length) {
    const unsigned char *p = (const unsigned char *)data;
    uint64_t c = crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        length -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (length > 0) {
        c32 = _mm_crc32_u8(c32, *p);
        p++;
        length--;
    }
    return c32;
}
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
int CReplicaLinux_crc32c_hardware_available(void) { return 1; }
uint32_t CReplicaLinux_crc32c_hardware(uint32_t crc, const void *data, size_t length) {
    const unsigned char *p = (const unsigned char *)data;
    while (length >= 8) { uint64_t w; memcpy(&w, p, 8); crc = __crc32cd(crc, w); p += 8; length -= 8; }
    while (length > 0) { crc = __crc32cb(crc, *p); p++; length--; }
    return crc;
}
#else
int CReplicaLinux_crc32c_hardware_available(void) { return 0; }
uint32_t CReplicaLinux_crc32c_hardware(uint32_t crc, const void *data, size_t length) {
    (void)data; (void)length; return crc;
}
#endif

int CReplicaLinux_set_malloc_thresholds(int mmap_threshold, int trim_threshold) {
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1;
}

int CReplicaLinux_set_malloc_arena_max(int arenas) {
    return mallopt(M_ARENA_MAX, arenas);
}

int CReplicaLinux_pipe_with_capacity(int fds[2], int capacity) {
    if (pipe2(fds, O_CLOEXEC) != 0) return -errno;
    int size = fcntl(fds[1], F_SETPIPE_SZ, capacity);
    if (size < capacity) {
        int code = size < 0 ? errno : ENOSPC;
        close(fds[0]);
        close(fds[1]);
        return -code;
    }
    return 0;
}

int64_t CReplicaLinux_splice_file_to_pipe(int file, int64_t offset, int pipe, size_t length) {
    loff_t position = offset;
    ssize_t moved;
    do {
        moved = splice(file, &position, pipe, NULL, length, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    } while (moved < 0 && errno == EINTR);
    return moved < 0 ? -errno : moved;
}

int64_t CReplicaLinux_splice_pipe_to_socket(int pipe, int socket, size_t length, int more) {
    // splice has no MSG_NOSIGNAL: SIGPIPE is blocked on this thread for the call, and one it
    // raised is taken back, so a peer that went away is an EPIPE and never ends the process.
    sigset_t pipeSignal, previous;
    sigemptyset(&pipeSignal);
    sigaddset(&pipeSignal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipeSignal, &previous);
    ssize_t moved;
    do {
        moved = splice(pipe, NULL, socket, NULL, length, SPLICE_F_MOVE | (more ? SPLICE_F_MORE : 0));
    } while (moved < 0 && errno == EINTR);
    int code = moved < 0 ? errno : 0;
    if (code == EPIPE && !sigismember(&previous, SIGPIPE)) {
        struct timespec now = {0, 0};
        while (sigtimedwait(&pipeSignal, NULL, &now) < 0 && errno == EINTR) {}
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    return moved < 0 ? -code : moved;
}

int64_t CReplicaLinux_splice_socket_to_pipe(int socket, int pipe, size_t length) {
    ssize_t moved;
    do {
        moved = splice(socket, NULL, pipe, NULL, length, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    } while (moved < 0 && errno == EINTR);
    return moved < 0 ? -errno : moved;
}

int64_t CReplicaLinux_splice_pipe_to_file(int pipe, int file, int64_t offset, size_t length) {
    loff_t position = offset;
    ssize_t moved;
    do {
        moved = splice(pipe, NULL, file, &position, length, SPLICE_F_MOVE);
    } while (moved < 0 && errno == EINTR);
    return moved < 0 ? -errno : moved;
}

void CReplicaLinux_set_thread_name(const char *name) {
    char shortened[16];
    strncpy(shortened, name, sizeof shortened - 1);
    shortened[sizeof shortened - 1] = 0;
    pthread_setname_np(pthread_self(), shortened);
}

int CReplicaLinux_accept_cloexec(int socket) {
    return accept4(socket, NULL, NULL, SOCK_CLOEXEC);
}
