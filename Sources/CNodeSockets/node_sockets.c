#define _GNU_SOURCE
#include <malloc.h>
#include "node_sockets.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int swiftmesh_node_setns_net(int fd)
{
	return setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
}

/* The process's home namespace descriptor (-1 until opened), opened under the lock, read without it once set. */
static int home_netns = -1;
static pthread_mutex_t home_netns_lock = PTHREAD_MUTEX_INITIALIZER;

int swiftmesh_node_home_netns(void)
{
	int fd = __atomic_load_n(&home_netns, __ATOMIC_ACQUIRE);
	if (fd >= 0)
		return fd;
	pthread_mutex_lock(&home_netns_lock);
	fd = home_netns;
	if (fd < 0) {
		fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			fd = -errno;
		else
			__atomic_store_n(&home_netns, fd, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&home_netns_lock);
	return fd;
}

long swiftmesh_node_send_with_fd(int socket, const void *bytes, size_t length, int fd)
{
	struct iovec iov = { .iov_base = (void *)bytes, .iov_len = length };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	union {
		char buffer[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	if (fd >= 0) {
		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buffer;
		msg.msg_controllen = sizeof(control.buffer);
		struct cmsghdr *header = CMSG_FIRSTHDR(&msg);
		header->cmsg_level = SOL_SOCKET;
		header->cmsg_type = SCM_RIGHTS;
		header->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(header), &fd, sizeof(int));
	}
	ssize_t sent;
	do {
		sent = sendmsg(socket, &msg, MSG_NOSIGNAL);
	} while (sent < 0 && errno == EINTR);
	return sent < 0 ? -errno : (long)sent;
}

long swiftmesh_node_receive_with_fd(int socket, void *bytes, size_t capacity, int *fd, int *truncated)
{
	struct iovec iov = { .iov_base = bytes, .iov_len = capacity };
	union {
		char buffer[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} control;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = control.buffer, .msg_controllen = sizeof(control.buffer) };
	*fd = -1;
	*truncated = 0;
	ssize_t received;
	do {
		received = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
	} while (received < 0 && errno == EINTR);
	if (received < 0)
		return -errno;
	for (struct cmsghdr *header = CMSG_FIRSTHDR(&msg); header; header = CMSG_NXTHDR(&msg, header)) {
		if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS)
			continue;
		size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i++) {
			int passed;
			memcpy(&passed, CMSG_DATA(header) + i * sizeof(int), sizeof(int));
			if (*fd < 0)
				*fd = passed;
			else
				close(passed);
		}
	}
	if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		*truncated = 1;
	return (long)received;
}

int swiftmesh_node_socket(int domain, int type)
{
	int fd = socket(domain, type | SOCK_CLOEXEC, 0);
	return fd < 0 ? -errno : fd;
}

int swiftmesh_node_poll(int fd, short events, int timeout_ms)
{
	struct pollfd entry = { .fd = fd, .events = events };
	int ready;
	do {
		ready = poll(&entry, 1, timeout_ms);
	} while (ready < 0 && errno == EINTR);
	if (ready < 0)
		return -errno;
	return ready == 0 ? 0 : entry.revents;
}

int swiftmesh_node_accept(int socket)
{
	int fd;
	do {
		fd = accept4(socket, NULL, NULL, SOCK_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

size_t swiftmesh_node_heap_in_use(void) {
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}

int swiftmesh_node_heap_trim(void) {
    return malloc_trim(0);
}

size_t swiftmesh_node_heap_arena_bytes(void) {
    return mallinfo2().arena;
}

void swiftmesh_node_heap_trim_thread_arena(void) {
    /* 96 KiB: at least glibc's FASTBIN_CONSOLIDATION_THRESHOLD (64 KiB), whose free of a block in a
       thread's arena calls heap_trim on that arena, and below the lowest mmap threshold (128 KiB by
       default), so the block comes from the calling thread's arena and not from mmap. Asking for a
       block that large also first merges the arena's fastbin blocks into their neighbours and the
       top, so what they held is trimmed too (blocks in a thread's tcache stay where they are). */
    void *block = malloc(96 << 10);
    /* Keeps the compiler from pairing the malloc with the free and dropping both. */
    __asm__ volatile("" : : "r"(block) : "memory");
    free(block);
}

int swiftmesh_node_heap_thresholds(size_t mmap_threshold, size_t trim_threshold) {
    return mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, (int)trim_threshold) == 1;
}
