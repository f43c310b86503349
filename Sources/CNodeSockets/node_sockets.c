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

/* Each thread's home namespace descriptor, stored plus one (0 is "none yet"), closed when the thread exits. */
static pthread_key_t home_netns_key;
static pthread_once_t home_netns_once = PTHREAD_ONCE_INIT;
static int home_netns_key_error;

static void home_netns_close(void *stored)
{
	close((int)((intptr_t)stored - 1));
}

static void home_netns_make_key(void)
{
	home_netns_key_error = pthread_key_create(&home_netns_key, home_netns_close);
}

int swiftmesh_node_home_netns(void)
{
	pthread_once(&home_netns_once, home_netns_make_key);
	if (home_netns_key_error != 0)
		return -home_netns_key_error;
	intptr_t stored = (intptr_t)pthread_getspecific(home_netns_key);
	if (stored > 0)
		return (int)(stored - 1);
	int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int error = pthread_setspecific(home_netns_key, (void *)(intptr_t)(fd + 1));
	if (error != 0) {
		close(fd);
		return -error;
	}
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
