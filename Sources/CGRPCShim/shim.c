// The gRPC C core behind CGRPCShim.h. See the header for the model and ownership rules.
#include "CGRPCShim.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdlib.h>
#include <string.h>

void sy_grpc_init(void) { grpc_init(); }

const char *sy_grpc_version(void) { return grpc_version_string(); }

// ---------------------------------------------------------------------------------------------
// Completion queues

struct sy_cq {
  grpc_completion_queue *cq;
};

sy_cq *sy_cq_create(void) {
  sy_cq *q = calloc(1, sizeof *q);
  if (!q) return NULL;
  q->cq = grpc_completion_queue_create_for_next(NULL);
  return q;
}

int sy_cq_next(sy_cq *q, int timeout_ms, void **tag, int *ok) {
  gpr_timespec deadline = timeout_ms < 0
      ? gpr_inf_future(GPR_CLOCK_MONOTONIC)
      : gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
  grpc_event ev = grpc_completion_queue_next(q->cq, deadline, NULL);
  switch (ev.type) {
    case GRPC_OP_COMPLETE:
      *tag = ev.tag;
      *ok = ev.success;
      return 1;
    case GRPC_QUEUE_SHUTDOWN:
      return -1;
    default:
      return 0;
  }
}

void sy_cq_shutdown(sy_cq *q) { grpc_completion_queue_shutdown(q->cq); }

void sy_cq_destroy(sy_cq *q) {
  if (!q) return;
  grpc_completion_queue_destroy(q->cq);
  free(q);
}

// ---------------------------------------------------------------------------------------------
// Channel arguments

static grpc_channel_args *make_args(grpc_arg storage[2], int max_receive_bytes, int max_send_bytes,
                                    grpc_channel_args *args) {
  size_t n = 0;
  if (max_receive_bytes > 0) {
    storage[n].type = GRPC_ARG_INTEGER;
    storage[n].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    storage[n].value.integer = max_receive_bytes;
    n++;
  }
  if (max_send_bytes > 0) {
    storage[n].type = GRPC_ARG_INTEGER;
    storage[n].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    storage[n].value.integer = max_send_bytes;
    n++;
  }
  args->num_args = n;
  args->args = storage;
  return n ? args : NULL;
}

// ---------------------------------------------------------------------------------------------
// Server

struct sy_server {
  grpc_server *server;
  sy_cq *cq;
};

struct sy_call {
  grpc_call *call;
  grpc_call_details details;
  grpc_metadata_array request_metadata;
};

sy_server *sy_server_create(sy_cq *cq, int max_receive_bytes, int max_send_bytes) {
  sy_server *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  grpc_arg storage[2];
  grpc_channel_args args;
  s->server = grpc_server_create(make_args(storage, max_receive_bytes, max_send_bytes, &args), NULL);
  s->cq = cq;
  grpc_server_register_completion_queue(s->server, cq->cq, NULL);
  return s;
}

int sy_server_add_port(sy_server *s, const char *address) {
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  int port = grpc_server_add_http2_port(s->server, address, creds);
  grpc_server_credentials_release(creds);
  return port;
}

void sy_server_start(sy_server *s) { grpc_server_start(s->server); }

sy_call *sy_server_request_call(sy_server *s, void *tag) {
  sy_call *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  grpc_call_details_init(&c->details);
  grpc_metadata_array_init(&c->request_metadata);
  grpc_call_error err = grpc_server_request_call(s->server, &c->call, &c->details, &c->request_metadata,
                                                 s->cq->cq, s->cq->cq, tag);
  if (err != GRPC_CALL_OK) {
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->request_metadata);
    free(c);
    return NULL;
  }
  return c;
}

void sy_server_shutdown(sy_server *s, void *tag) { grpc_server_shutdown_and_notify(s->server, s->cq->cq, tag); }

void sy_server_cancel_all(sy_server *s) { grpc_server_cancel_all_calls(s->server); }

void sy_server_destroy(sy_server *s) {
  if (!s) return;
  grpc_server_destroy(s->server);
  free(s);
}

// By pointer: small slices keep their bytes inline in the grpc_slice itself, so a pointer into a
// by-value copy would dangle.
static const char *slice_bytes(const grpc_slice *slice, size_t *length) {
  *length = GRPC_SLICE_LENGTH(*slice);
  return (const char *)GRPC_SLICE_START_PTR(*slice);
}

const char *sy_call_method(sy_call *c, size_t *length) { return slice_bytes(&c->details.method, length); }

int64_t sy_call_deadline_remaining_ms(sy_call *c) {
  gpr_timespec deadline = c->details.deadline;
  if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0) return -1;
  gpr_timespec now = gpr_now(deadline.clock_type);
  gpr_timespec left = gpr_time_sub(deadline, now);
  int64_t ms = gpr_time_to_millis(left);
  return ms < 0 ? 0 : ms;
}

size_t sy_call_metadata_count(sy_call *c) { return c->request_metadata.count; }

const char *sy_call_metadata_key(sy_call *c, size_t i, size_t *length) {
  return slice_bytes(&c->request_metadata.metadata[i].key, length);
}

const char *sy_call_metadata_value(sy_call *c, size_t i, size_t *length) {
  return slice_bytes(&c->request_metadata.metadata[i].value, length);
}

// ---------------------------------------------------------------------------------------------
// Client

struct sy_channel {
  grpc_channel *channel;
};

sy_channel *sy_channel_create(const char *target, int max_receive_bytes, int max_send_bytes) {
  sy_channel *ch = calloc(1, sizeof *ch);
  if (!ch) return NULL;
  grpc_arg storage[2];
  grpc_channel_args args;
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  ch->channel = grpc_channel_create(target, creds, make_args(storage, max_receive_bytes, max_send_bytes, &args));
  grpc_channel_credentials_release(creds);
  return ch;
}

void sy_channel_destroy(sy_channel *ch) {
  if (!ch) return;
  grpc_channel_destroy(ch->channel);
  free(ch);
}

sy_call *sy_channel_create_call(sy_channel *ch, sy_cq *cq, const char *method, int64_t deadline_ms) {
  sy_call *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  grpc_call_details_init(&c->details);
  grpc_metadata_array_init(&c->request_metadata);
  gpr_timespec deadline = deadline_ms > 0
      ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(deadline_ms, GPR_TIMESPAN))
      : gpr_inf_future(GPR_CLOCK_MONOTONIC);
  grpc_slice m = grpc_slice_from_copied_string(method);
  c->call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq->cq, m, NULL, deadline, NULL);
  grpc_slice_unref(m);
  if (!c->call) {
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->request_metadata);
    free(c);
    return NULL;
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// Calls

void sy_call_cancel(sy_call *c) {
  if (c && c->call) grpc_call_cancel(c->call, NULL);
}

void sy_call_cancel_with_status(sy_call *c, int status, const char *details) {
  if (c && c->call) grpc_call_cancel_with_status(c->call, (grpc_status_code)status, details, NULL);
}

void sy_call_destroy(sy_call *c) {
  if (!c) return;
  if (c->call) grpc_call_unref(c->call);
  grpc_call_details_destroy(&c->details);
  grpc_metadata_array_destroy(&c->request_metadata);
  free(c);
}

// ---------------------------------------------------------------------------------------------
// Batches

#define SY_MAX_METADATA 8

struct sy_op {
  int send_initial;
  grpc_metadata send_metadata[SY_MAX_METADATA];
  size_t send_metadata_count;
  grpc_byte_buffer *send_buffer;
  int send_close;
  int send_status;
  grpc_status_code send_status_code;
  grpc_slice send_status_details;
  int recv_initial;
  grpc_metadata_array recv_initial_metadata;
  int recv_message;
  grpc_byte_buffer *recv_buffer;
  uint8_t *flat;
  size_t flat_length;
  int flattened;
  int recv_status;
  grpc_metadata_array trailing_metadata;
  grpc_status_code status;
  grpc_slice status_details;
  const char *error_string;
  int recv_close;
  int cancelled;
};

sy_op *sy_op_new(void) {
  sy_op *op = calloc(1, sizeof *op);
  if (!op) return NULL;
  grpc_metadata_array_init(&op->recv_initial_metadata);
  grpc_metadata_array_init(&op->trailing_metadata);
  op->send_status_details = grpc_empty_slice();
  op->status_details = grpc_empty_slice();
  return op;
}

void sy_op_free(sy_op *op) {
  if (!op) return;
  for (size_t i = 0; i < op->send_metadata_count; i++) {
    grpc_slice_unref(op->send_metadata[i].key);
    grpc_slice_unref(op->send_metadata[i].value);
  }
  if (op->send_buffer) grpc_byte_buffer_destroy(op->send_buffer);
  if (op->recv_buffer) grpc_byte_buffer_destroy(op->recv_buffer);
  grpc_slice_unref(op->send_status_details);
  grpc_slice_unref(op->status_details);
  grpc_metadata_array_destroy(&op->recv_initial_metadata);
  grpc_metadata_array_destroy(&op->trailing_metadata);
  if (op->error_string) gpr_free((void *)op->error_string);
  free(op->flat);
  free(op);
}

void sy_op_add_initial_metadata(sy_op *op, const char *key, const char *value) {
  op->send_initial = 1;
  if (op->send_metadata_count == SY_MAX_METADATA) return;
  grpc_metadata *m = &op->send_metadata[op->send_metadata_count++];
  memset(m, 0, sizeof *m);
  m->key = grpc_slice_from_copied_string(key);
  m->value = grpc_slice_from_copied_string(value);
}

void sy_op_send_initial_metadata(sy_op *op) { op->send_initial = 1; }

void sy_op_send_message(sy_op *op, const uint8_t *bytes, size_t length) {
  grpc_slice slice = grpc_slice_from_copied_buffer((const char *)bytes, length);
  if (op->send_buffer) grpc_byte_buffer_destroy(op->send_buffer);
  op->send_buffer = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
}

void sy_op_send_close(sy_op *op) { op->send_close = 1; }

void sy_op_send_status(sy_op *op, int status, const char *details) {
  op->send_status = 1;
  op->send_status_code = (grpc_status_code)status;
  grpc_slice_unref(op->send_status_details);
  op->send_status_details = details ? grpc_slice_from_copied_string(details) : grpc_empty_slice();
}

void sy_op_recv_initial_metadata(sy_op *op) { op->recv_initial = 1; }
void sy_op_recv_message(sy_op *op) { op->recv_message = 1; }
void sy_op_recv_status(sy_op *op) { op->recv_status = 1; }
void sy_op_recv_close(sy_op *op) { op->recv_close = 1; }

int sy_op_start(sy_call *c, sy_op *op, void *tag) {
  grpc_op ops[8];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (op->send_initial) {
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].data.send_initial_metadata.count = op->send_metadata_count;
    ops[n].data.send_initial_metadata.metadata = op->send_metadata;
    n++;
  }
  if (op->send_buffer) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = op->send_buffer;
    n++;
  }
  if (op->send_close) {
    ops[n].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    n++;
  }
  if (op->send_status) {
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.trailing_metadata_count = 0;
    ops[n].data.send_status_from_server.status = op->send_status_code;
    ops[n].data.send_status_from_server.status_details = &op->send_status_details;
    n++;
  }
  if (op->recv_initial) {
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n].data.recv_initial_metadata.recv_initial_metadata = &op->recv_initial_metadata;
    n++;
  }
  if (op->recv_message) {
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n].data.recv_message.recv_message = &op->recv_buffer;
    n++;
  }
  if (op->recv_status) {
    ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[n].data.recv_status_on_client.trailing_metadata = &op->trailing_metadata;
    ops[n].data.recv_status_on_client.status = &op->status;
    ops[n].data.recv_status_on_client.status_details = &op->status_details;
    ops[n].data.recv_status_on_client.error_string = &op->error_string;
    n++;
  }
  if (op->recv_close) {
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &op->cancelled;
    n++;
  }
  return (int)grpc_call_start_batch(c->call, ops, n, tag, NULL);
}

int sy_op_cancelled(sy_op *op) { return op->cancelled; }

int sy_op_has_message(sy_op *op) { return op->recv_buffer != NULL; }

static void flatten(sy_op *op) {
  if (op->flattened || !op->recv_buffer) return;
  op->flattened = 1;
  grpc_byte_buffer_reader reader;
  if (!grpc_byte_buffer_reader_init(&reader, op->recv_buffer)) return;
  grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  op->flat_length = GRPC_SLICE_LENGTH(all);
  op->flat = malloc(op->flat_length ? op->flat_length : 1);
  if (op->flat) memcpy(op->flat, GRPC_SLICE_START_PTR(all), op->flat_length);
  else op->flat_length = 0;
  grpc_slice_unref(all);
}

size_t sy_op_message_length(sy_op *op) {
  flatten(op);
  return op->flat_length;
}

void sy_op_message_copy(sy_op *op, uint8_t *out) {
  flatten(op);
  if (op->flat_length) memcpy(out, op->flat, op->flat_length);
}

int sy_op_status(sy_op *op) { return (int)op->status; }

const char *sy_op_status_details(sy_op *op, size_t *length) { return slice_bytes(&op->status_details, length); }

size_t sy_op_initial_metadata_count(sy_op *op) { return op->recv_initial_metadata.count; }

const char *sy_op_initial_metadata_key(sy_op *op, size_t i, size_t *length) {
  return slice_bytes(&op->recv_initial_metadata.metadata[i].key, length);
}

const char *sy_op_initial_metadata_value(sy_op *op, size_t i, size_t *length) {
  return slice_bytes(&op->recv_initial_metadata.metadata[i].value, length);
}
