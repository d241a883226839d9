// A thin C layer over the gRPC C core (Debian's libgrpc 1.51) for Switchyard's server and
// client. Swift sees plain functions and opaque handles; the core's unions, macros, slices and
// byte buffers stay in shim.c.
//
// Model: every asynchronous operation is a *batch* (`sy_op`) built with the sy_op_* functions,
// started on a call with a caller-chosen `tag`, and completed on a completion queue (`sy_cq`):
// `sy_cq_next` returns the tag and whether the batch succeeded. Results (a received message,
// the cancelled flag, a status, metadata) are read from the op afterwards, then the op is freed.
//
// Ownership: every create/new has exactly one destroy/free. An op must stay alive (not freed)
// until its tag has come out of the completion queue. Thread safety: as the C core's — a call
// may have several batches in flight as long as each op type appears in at most one of them.
#ifndef SWITCHYARD_CGRPCSHIM_H
#define SWITCHYARD_CGRPCSHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Initialises the gRPC library (reference counted by the core; call once per user).
void sy_grpc_init(void);
/// The gRPC core version string.
const char *sy_grpc_version(void);

typedef struct sy_cq sy_cq;
typedef struct sy_server sy_server;
typedef struct sy_channel sy_channel;
typedef struct sy_call sy_call;
typedef struct sy_op sy_op;

// ---------------------------------------------------------------------------------------------
// Completion queues

sy_cq *sy_cq_create(void);
/// Waits up to `timeout_ms` (< 0: forever) for the next completion. Returns 1 with `*tag` and
/// `*ok` set for a completed batch, 0 on timeout, -1 once the queue is shut down and drained.
int sy_cq_next(sy_cq *cq, int timeout_ms, void **tag, int *ok);
/// Starts shutting the queue down; keep calling sy_cq_next until it returns -1.
void sy_cq_shutdown(sy_cq *cq);
/// Frees a queue that sy_cq_next has reported drained.
void sy_cq_destroy(sy_cq *cq);

// ---------------------------------------------------------------------------------------------
// Server

/// A server whose calls complete on `cq`. Message size caps in bytes (<= 0: the core's default).
sy_server *sy_server_create(sy_cq *cq, int max_receive_bytes, int max_send_bytes);
/// Binds an insecure HTTP/2 port ("127.0.0.1:50051"; port 0 picks a free one). Returns the
/// bound port, or 0 when the address cannot be bound. Before sy_server_start only.
int sy_server_add_port(sy_server *server, const char *address);
void sy_server_start(sy_server *server);
/// Asks for the next incoming call: `tag` completes when one arrives (ok = 0 when the server
/// is shutting down). Returns NULL if the request could not be posted.
sy_call *sy_server_request_call(sy_server *server, void *tag);
/// Stops accepting calls; `tag` completes when every call has finished.
void sy_server_shutdown(sy_server *server, void *tag);
/// Cancels every call still running (after sy_server_shutdown).
void sy_server_cancel_all(sy_server *server);
/// Frees the server after its shutdown tag has completed.
void sy_server_destroy(sy_server *server);

// Details of a call received by the server (valid once its request tag has completed).
/// The full method name, "/package.Service/Method" (not NUL-terminated; `*length` bytes).
const char *sy_call_method(sy_call *call, size_t *length);
/// Milliseconds until the client's deadline, or -1 when it set none.
int64_t sy_call_deadline_remaining_ms(sy_call *call);
size_t sy_call_metadata_count(sy_call *call);
/// Key and value of request metadata entry `index` (not NUL-terminated).
const char *sy_call_metadata_key(sy_call *call, size_t index, size_t *length);
const char *sy_call_metadata_value(sy_call *call, size_t index, size_t *length);

// ---------------------------------------------------------------------------------------------
// Client

/// An insecure channel to `target` ("127.0.0.1:50051"). Message caps as for the server.
sy_channel *sy_channel_create(const char *target, int max_receive_bytes, int max_send_bytes);
void sy_channel_destroy(sy_channel *channel);
/// A call of `method` ("/package.Service/Method") completing on `cq`, with a deadline
/// `deadline_ms` from now (<= 0: none).
sy_call *sy_channel_create_call(sy_channel *channel, sy_cq *cq, const char *method, int64_t deadline_ms);

// ---------------------------------------------------------------------------------------------
// Calls (both sides)

/// Cancels the call (the peer sees CANCELLED). Safe from any thread, any number of times.
void sy_call_cancel(sy_call *call);
/// Cancels with a status code and message (server side: e.g. on shutdown).
void sy_call_cancel_with_status(sy_call *call, int status, const char *details);
/// Releases the call. Every op started on it must have completed.
void sy_call_destroy(sy_call *call);

// ---------------------------------------------------------------------------------------------
// Batches

sy_op *sy_op_new(void);
void sy_op_free(sy_op *op);
/// Adds one initial-metadata entry to send (and makes this batch send initial metadata).
void sy_op_add_initial_metadata(sy_op *op, const char *key, const char *value);
/// Sends initial metadata (with whatever entries were added; possibly none).
void sy_op_send_initial_metadata(sy_op *op);
/// Sends one message (the bytes are copied).
void sy_op_send_message(sy_op *op, const uint8_t *bytes, size_t length);
/// Client: half-closes the sending side.
void sy_op_send_close(sy_op *op);
/// Server: sends the final status (`details` may be NULL).
void sy_op_send_status(sy_op *op, int status, const char *details);
/// Client: receives the server's initial metadata.
void sy_op_recv_initial_metadata(sy_op *op);
/// Receives one message (none when the peer has finished sending).
void sy_op_recv_message(sy_op *op);
/// Client: receives the final status and trailing metadata.
void sy_op_recv_status(sy_op *op);
/// Server: completes when the call is over; then sy_op_cancelled tells whether it was
/// cancelled (client cancellation, deadline, connection lost).
void sy_op_recv_close(sy_op *op);
/// Starts the batch on `call`. Returns 0 (GRPC_CALL_OK) or the core's grpc_call_error.
int sy_op_start(sy_call *call, sy_op *op, void *tag);

// Results (after the tag has completed)
int sy_op_cancelled(sy_op *op);
/// 1 when a message was received; 0 when the stream had ended.
int sy_op_has_message(sy_op *op);
size_t sy_op_message_length(sy_op *op);
/// Copies the received message into `out` (sy_op_message_length bytes).
void sy_op_message_copy(sy_op *op, uint8_t *out);
int sy_op_status(sy_op *op);
/// The status details (not NUL-terminated).
const char *sy_op_status_details(sy_op *op, size_t *length);
/// Received initial metadata (client).
size_t sy_op_initial_metadata_count(sy_op *op);
const char *sy_op_initial_metadata_key(sy_op *op, size_t index, size_t *length);
const char *sy_op_initial_metadata_value(sy_op *op, size_t index, size_t *length);

#ifdef __cplusplus
}
#endif
#endif
