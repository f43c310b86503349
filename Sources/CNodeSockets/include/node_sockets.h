#ifndef SWIFT_MESH_NODE_SOCKETS_H
#define SWIFT_MESH_NODE_SOCKETS_H
/*
 * CNodeSockets: the few C-only constructs the node proxy's capture needs:
 * setns(2) for network namespaces, SCM_RIGHTS descriptor passing over a Unix
 * socket (CMSG_* are macros Swift cannot call) and poll.
 * Every function returns 0 or a length on success and -errno on failure.
 */
#include <stddef.h>
#include <stdint.h>

/* Enters the network namespace open at `fd` (calling thread only). */
int swiftmesh_node_setns_net(int fd);

/*
 * A descriptor of the process's home network namespace: the one the calling thread is in
 * at the first successful call, opened once and kept open (do not close it). Threads of a
 * process that enters other namespaces only between setns(2) calls that bring it back are
 * all in that namespace outside those calls.
 */
int swiftmesh_node_home_netns(void);

/* Sends one message of `length` bytes, with `fd` as SCM_RIGHTS when fd >= 0. */
long swiftmesh_node_send_with_fd(int socket, const void *bytes, size_t length, int fd);

/*
 * Receives one message into `bytes` (capacity `capacity`). A passed descriptor
 * is stored in `*fd` (-1 when none; extra descriptors are closed). `*truncated`
 * is set when the message or its ancillary data did not fit (MSG_TRUNC or
 * MSG_CTRUNC). Returns the message length (0 when the peer closed).
 */
long swiftmesh_node_receive_with_fd(int socket, void *bytes, size_t capacity, int *fd, int *truncated);

/* Creates a socket of `domain`/`type` (close-on-exec) in the calling thread's namespace. */
int swiftmesh_node_socket(int domain, int type);

/* Accepts a connection on `socket` (close-on-exec), retrying on EINTR. */
int swiftmesh_node_accept(int socket);

/* Polls `fd` for `events` up to `timeout_ms`; returns the revents, 0 on timeout. */
int swiftmesh_node_poll(int fd, short events, int timeout_ms);

/* Bytes the allocator has handed out (glibc mallinfo2: uordblks + hblkhd). */
size_t swiftmesh_node_heap_in_use(void);

/* glibc malloc_trim(0): returns free heap pages of every arena to the kernel; 1 if any were.
   It leaves the top (the free end) of every arena but the main one. */
int swiftmesh_node_heap_trim(void);

/* Bytes glibc's arenas hold from the system, mapped blocks not counted (mallinfo2().arena). */
size_t swiftmesh_node_heap_arena_bytes(void);

/* Trims the top of the calling thread's arena: allocates and frees a 96 KiB block there, on which
   glibc gives back what of the top exceeds M_TOP_PAD once the top has reached M_TRIM_THRESHOLD. */
void swiftmesh_node_heap_trim_thread_arena(void);

/* glibc mallopt M_MMAP_THRESHOLD and M_TRIM_THRESHOLD, which also ends glibc's raising of both
   after a large block is freed; 1 when both were set. */
int swiftmesh_node_heap_thresholds(size_t mmap_threshold, size_t trim_threshold);

#endif
