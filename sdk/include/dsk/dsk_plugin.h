/* dsk_plugin.h - the dsk plugin ABI, version 1.
 *
 * A dsk plugin is a shared library with one exported C symbol, `dsk_plugin_query`, and a TOML
 * manifest beside it. The kernel reads the manifest without loading the library, loads the
 * library when a pipeline (or `dsk plugins list`) needs it, calls `dsk_plugin_query` with its ABI
 * version, checks the returned descriptor against the manifest, and calls `init` with a table of
 * host functions. During `init` the plugin registers what it provides (device backends, operator
 * schemas and kernels, optimizers, search strategies, pipeline stages, dataset readers) through
 * that table. A plugin never links against libdsk: everything it needs from the kernel is in
 * `dsk_host_api` (the SQLite `sqlite3_api_routines` / ONNX Runtime `OrtApi` pattern).
 *
 * This header depends on <stdint.h> and <stddef.h> only, and is valid C99 and C++.
 *
 * Minimal plugin (see plugins/_template/ for the C++ wrapper version):
 *
 *     static dsk_status my_run(void* self, dsk_stage_context* ctx) { ... }
 *     static dsk_status my_init(const dsk_host_api* host, dsk_registrar* reg, void** out_state) {
 *         static const dsk_stage_iface stage = {sizeof(dsk_stage_iface), "hello", "says hello",
 *                                               NULL, NULL, 0, my_run};
 *         *out_state = NULL;
 *         return host->register_stage(reg, &stage);
 *     }
 *     static const char* const provides[] = {"stage:hello", NULL};
 *     static const dsk_plugin_descriptor desc = {sizeof(dsk_plugin_descriptor), DSK_ABI_VERSION,
 *         "hello", "0.1.0", "Says hello", provides, my_init, NULL};
 *     DSK_PLUGIN_EXPORT const dsk_plugin_descriptor* dsk_plugin_query(uint32_t host_abi) {
 *         (void)host_abi; return &desc;
 *     }
 *
 * Versioning rules (docs/abi.md has the full text):
 * - DSK_ABI_VERSION = major << 16 | minor. A major mismatch is refused with both numbers shown.
 *   Within one major, structs and function tables only grow at the end ("add new members to the
 *   end of this structure only"); every boundary struct starts with `struct_size`, and a reader
 *   touches a member only when `struct_size` covers it (DSK_HAS_MEMBER).
 * - Strings are NUL-terminated UTF-8. Unless a comment says otherwise, every pointer parameter is
 *   borrowed for the duration of the call only; `out_` parameters are written by the callee.
 * - No exception, no `abort`, no STL type crosses this boundary. Errors are `dsk_status` values.
 */
#ifndef DSK_PLUGIN_H_
#define DSK_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*==============================================================================================
 * Versions and export
 *============================================================================================*/

#define DSK_ABI_VERSION_MAJOR 1
#define DSK_ABI_VERSION_MINOR 3
#define DSK_MAKE_ABI_VERSION(major, minor) ((uint32_t)(((major) << 16) | ((minor)&0xffffu)))
#define DSK_ABI_VERSION DSK_MAKE_ABI_VERSION(DSK_ABI_VERSION_MAJOR, DSK_ABI_VERSION_MINOR)
#define DSK_ABI_MAJOR(v) ((uint32_t)(v) >> 16)
#define DSK_ABI_MINOR(v) ((uint32_t)(v)&0xffffu)

/* The name of the one symbol every plugin exports. */
#define DSK_PLUGIN_QUERY_SYMBOL "dsk_plugin_query"

#if defined(_WIN32)
#define DSK_PLUGIN_EXPORT __declspec(dllexport)
#else
#define DSK_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/* True when a struct whose first member is `uint32_t struct_size` is large enough to hold
 * `member`: use it before reading any member added after ABI 1.0. */
#define DSK_HAS_MEMBER(ptr, type, member) \
    ((ptr)->struct_size >= offsetof(type, member) + sizeof(((type*)0)->member))

/*==============================================================================================
 * Status
 *============================================================================================*/

/* Status codes (the IREE / absl canonical set that ML runtimes use). */
typedef enum dsk_status_code {
    DSK_OK = 0,
    DSK_INVALID_ARGUMENT = 1,   /* bad value from the caller or the user's config */
    DSK_NOT_FOUND = 2,          /* a named plugin, device, op, key or file does not exist */
    DSK_ALREADY_EXISTS = 3,     /* a name is registered twice */
    DSK_UNIMPLEMENTED = 4,      /* this provider does not do that (e.g. an optional entry) */
    DSK_UNAVAILABLE = 5,        /* exists but cannot be used now (no driver, device busy) */
    DSK_INCOMPATIBLE = 6,       /* ABI or version mismatch */
    DSK_RESOURCE_EXHAUSTED = 7, /* out of memory, or a search space with nothing left */
    DSK_FAILED_PRECONDITION = 8,/* called in the wrong state (e.g. register after init) */
    DSK_CANCELLED = 9,          /* stopped on request (Ctrl-C) */
    DSK_DATA_LOSS = 10,         /* corrupt or truncated input */
    DSK_INTERNAL = 11,          /* a bug: an exception escaped, an invariant broke */
    DSK_STATUS_CODE_COUNT_ = 12
} dsk_status_code;

/* A status is NULL for success, or an opaque heap object holding a code and a message.
 * Statuses are created and freed only through the host table (host->status_create/free), so
 * they cross the boundary in both directions with one allocator. Returning a status transfers
 * its ownership to the caller. */
typedef struct dsk_status_object* dsk_status;
#define DSK_STATUS_OK ((dsk_status)0)

/*==============================================================================================
 * Opaque handles
 *============================================================================================*/

typedef struct dsk_registrar dsk_registrar;         /* host: valid only during init */
typedef struct dsk_config dsk_config;               /* host: a TOML table, read through host */
typedef struct dsk_stage_context dsk_stage_context; /* host: one running pipeline stage */
typedef struct dsk_graph dsk_graph;                 /* host: a graph under construction */
typedef struct dsk_session dsk_session;             /* host: a graph placed on a device */
typedef struct dsk_exec_context dsk_exec_context;   /* host: one op execution */

typedef struct dsk_device dsk_device;         /* backend: an opened device */
typedef struct dsk_buffer dsk_buffer;         /* backend: memory on a device */
typedef struct dsk_queue dsk_queue;           /* backend: in-order command stream */
typedef struct dsk_fence dsk_fence;           /* backend: signalled when queued work is done */
typedef struct dsk_executable dsk_executable; /* backend: a compiled subgraph */
typedef struct dsk_optimizer dsk_optimizer;   /* plugin: one optimizer instance */
typedef struct dsk_search dsk_search;         /* plugin: one search (study) instance */
typedef struct dsk_dataset dsk_dataset;       /* plugin: one opened dataset */

/*==============================================================================================
 * Tensors
 *============================================================================================*/

typedef enum dsk_dtype {
    DSK_DTYPE_INVALID = 0,
    DSK_DTYPE_F32 = 1,
    DSK_DTYPE_F16 = 2,
    DSK_DTYPE_BF16 = 3,
    DSK_DTYPE_F64 = 4,
    DSK_DTYPE_I8 = 5,
    DSK_DTYPE_U8 = 6,
    DSK_DTYPE_I32 = 7,
    DSK_DTYPE_I64 = 8,
    DSK_DTYPE_BOOL = 9, /* one byte, 0 or 1 */
    DSK_DTYPE_COUNT_ = 10
} dsk_dtype;

#define DSK_MAX_DIMS 8

/* A tensor crosses the boundary as this descriptor; it never owns its memory.
 * Element (i0..in) lives at byte `offset + sum(ik * strides[k]) * element_size` of `buffer`.
 * `data` is the host address of element 0 when the memory is host-visible, NULL otherwise. */
typedef struct dsk_tensor_desc {
    uint32_t struct_size;
    uint32_t dtype; /* dsk_dtype */
    uint32_t ndim;  /* 0 = scalar */
    uint32_t flags; /* reserved, 0 */
    int64_t shape[DSK_MAX_DIMS];
    int64_t strides[DSK_MAX_DIMS]; /* in elements */
    dsk_device* device;            /* NULL = host memory owned by the caller */
    dsk_buffer* buffer;            /* NULL when device is NULL */
    uint64_t offset;               /* bytes from the start of buffer */
    void* data;
} dsk_tensor_desc;

/*==============================================================================================
 * Attributes and parameter schemas
 *============================================================================================*/

typedef enum dsk_attr_type {
    DSK_ATTR_INT = 1,
    DSK_ATTR_FLOAT = 2,
    DSK_ATTR_STRING = 3,
    DSK_ATTR_INTS = 4,
    DSK_ATTR_FLOATS = 5
} dsk_attr_type;

/* One named attribute of an operator node (ONNX attributes). Arrays are borrowed. */
typedef struct dsk_attr {
    uint32_t struct_size;
    uint32_t type; /* dsk_attr_type */
    const char* name;
    int64_t i;
    double f;
    const char* s;
    const int64_t* ints;
    const double* floats;
    size_t count; /* elements in ints / floats */
} dsk_attr;

typedef enum dsk_param_type {
    DSK_PARAM_BOOL = 1,
    DSK_PARAM_INT = 2,
    DSK_PARAM_FLOAT = 3, /* an integer literal is accepted too */
    DSK_PARAM_STRING = 4,
    DSK_PARAM_ARRAY = 5, /* any TOML array */
    DSK_PARAM_TABLE = 6  /* any TOML table (its keys are the provider's to check) */
} dsk_param_type;

#define DSK_PARAM_REQUIRED 1u
#define DSK_PARAM_BOUNDED 2u /* min_value / max_value apply (a zeroed spec is unbounded) */

/* One key a provider accepts in its pipeline section (a stage's keys, a search's options...).
 * The kernel validates a whole pipeline against these before anything runs: unknown keys, types,
 * ranges and choices, with file:line:column in every message. Arrays of specs are sized by the
 * count beside them. */
typedef struct dsk_param_spec {
    uint32_t struct_size;
    uint32_t type;  /* dsk_param_type */
    uint32_t flags; /* DSK_PARAM_REQUIRED, DSK_PARAM_BOUNDED */
    const char* name;
    const char* description;
    const char* default_value;   /* a TOML literal ("0.1", "\"sgd\"", "[1, 2]") or NULL */
    double min_value, max_value; /* inclusive bounds for INT/FLOAT, with DSK_PARAM_BOUNDED */
    const char* const* choices;  /* STRING: NULL-terminated list of allowed values, or NULL */
} dsk_param_spec;

/*==============================================================================================
 * Device backends
 *============================================================================================*/

typedef enum dsk_device_type {
    DSK_DEVICE_CPU = 1,
    DSK_DEVICE_GPU = 2,
    DSK_DEVICE_NPU = 3,
    DSK_DEVICE_ACCELERATOR = 4
} dsk_device_type;

/* What a backend says about one of its devices. The caller sets struct_size; the backend writes
 * only members that struct_size covers. Strings are owned by the backend and stay valid until
 * the plugin is unloaded. */
typedef struct dsk_device_info {
    uint32_t struct_size;
    uint32_t type; /* dsk_device_type */
    const char* name;
    const char* description;
    uint64_t memory_bytes;       /* 0 = unknown */
    int32_t score;               /* probe score: higher is preferred; <= 0 means unusable */
    const char* unusable_reason; /* set when score <= 0: why, and what would fix it */
    uint32_t subgroup_size;      /* SIMD width the device executes (0 = n/a) */
} dsk_device_info;

/* One operator node as the kernel shows it to backends and schemas. `inputs`/`outputs` index
 * the tensor array of the enclosing dsk_graph_view (or the arrays passed beside the node). */
typedef struct dsk_node_view {
    uint32_t struct_size;
    uint32_t op_version;
    const char* op; /* "MatMul", "Conv", ... (ONNX names where ONNX has the op) */
    const char* domain; /* "" for the core set, else the plugin's domain */
    const dsk_attr* attrs;
    size_t attr_count;
    const uint32_t* inputs;
    size_t input_count;
    const uint32_t* outputs;
    size_t output_count;
} dsk_node_view;

typedef struct dsk_graph_view {
    uint32_t struct_size;
    const dsk_node_view* nodes;
    size_t node_count;
    const dsk_tensor_desc* tensors; /* shapes and dtypes; buffers may be NULL before allocation */
    size_t tensor_count;
} dsk_graph_view;

#define DSK_BUFFER_HOST_VISIBLE 1u /* buffer_map must succeed */
#define DSK_WAIT_INFINITE UINT64_MAX

/* A device backend. The iface itself is borrowed by the kernel until the plugin's shutdown, so a
 * `static const` instance is the normal way to provide one. `self` is passed back to the
 * device-level functions. Optional members may be NULL. */
typedef struct dsk_backend_iface {
    uint32_t struct_size;
    const char* name; /* "cpu", "vulkan", "my-npu" */
    void* self;

    /* Enumeration: never fails because a device is unusable; it reports score <= 0 instead. */
    dsk_status (*device_count)(void* self, uint32_t* out_count);
    dsk_status (*device_info)(void* self, uint32_t index, dsk_device_info* out_info);
    /* Opens a device. The caller owns *out_device and releases it with device_close. */
    dsk_status (*device_open)(void* self, uint32_t index, dsk_device** out_device);
    void (*device_close)(dsk_device* device);

    /* Memory. The caller owns *out_buffer and releases it with buffer_free. */
    dsk_status (*buffer_alloc)(dsk_device* device, uint64_t size, uint64_t alignment,
                               uint32_t flags, dsk_buffer** out_buffer);
    void (*buffer_free)(dsk_buffer* buffer);
    /* Host address of a host-visible buffer; UNIMPLEMENTED for device-only memory. The address
     * is valid until buffer_free. */
    dsk_status (*buffer_map)(dsk_buffer* buffer, void** out_host_ptr);

    /* Queues run work in submission order. The caller owns queues and fences. */
    dsk_status (*queue_create)(dsk_device* device, dsk_queue** out_queue);
    void (*queue_destroy)(dsk_queue* queue);
    /* Copies are enqueued; `src`/`dst` host memory must stay valid until the fence after them
     * signals. */
    dsk_status (*copy_to_device)(dsk_queue* queue, const void* src, dsk_buffer* dst,
                                 uint64_t dst_offset, uint64_t size);
    dsk_status (*copy_to_host)(dsk_queue* queue, dsk_buffer* src, uint64_t src_offset, void* dst,
                               uint64_t size);
    dsk_status (*copy_on_device)(dsk_queue* queue, dsk_buffer* src, uint64_t src_offset,
                                 dsk_buffer* dst, uint64_t dst_offset, uint64_t size);
    /* Submits what was enqueued and returns a fence signalled when it completes. */
    dsk_status (*queue_flush)(dsk_queue* queue, dsk_fence** out_fence);
    /* DSK_UNAVAILABLE with "timeout" in the message when timeout_ns passes first. */
    dsk_status (*fence_wait)(dsk_fence* fence, uint64_t timeout_ns);
    void (*fence_destroy)(dsk_fence* fence);

    /* Placement: can this device run this node with these tensor types? (ggml supports_op).
     * `tensors` holds the node's inputs then outputs. Returns 1 or 0; never fails. */
    int32_t (*supports_op)(dsk_device* device, const dsk_node_view* node,
                           const dsk_tensor_desc* tensors);

    /* Optional, for accelerators that take whole subgraphs (ONNX Runtime GetCapability,
     * OpenVINO query_model): set out_supported[i] = 1 for every node this device claims. */
    dsk_status (*get_capability)(dsk_device* device, const dsk_graph_view* graph,
                                 uint8_t* out_supported);
    /* Optional: compile the listed nodes into one executable. The caller owns *out_executable
     * and releases it with executable_release. */
    dsk_status (*compile)(dsk_device* device, const dsk_graph_view* graph,
                          const uint32_t* node_indices, size_t node_count,
                          dsk_executable** out_executable);
    /* Optional: enqueue a compiled subgraph. `tensors` are its boundary tensors, in the order
     * compile reported them (inputs of the subgraph first, then outputs). */
    dsk_status (*execute)(dsk_executable* executable, dsk_queue* queue,
                          const dsk_tensor_desc* tensors, size_t tensor_count);
    void (*executable_release)(dsk_executable* executable);
} dsk_backend_iface;

/*==============================================================================================
 * Operators
 *============================================================================================*/

typedef uint32_t dsk_value_id; /* a value (tensor) inside a dsk_graph */
#define DSK_VALUE_NONE UINT32_MAX
#define DSK_VARIABLE_TRAINABLE 1u /* graph_variable flag: an optimizer updates it */

/* An operator schema (ONNX OpSchema + a gradient rule). Semantics of core ops follow ONNX. */
typedef struct dsk_op_schema {
    uint32_t struct_size;
    uint32_t since_version;
    const char* name;
    const char* domain; /* "" for the core set */
    const char* description;
    void* self;
    uint32_t min_inputs, max_inputs;
    uint32_t min_outputs, max_outputs;
    /* Fills dtype/ndim/shape of every output from the inputs' (strides are the kernel's job).
     * INVALID_ARGUMENT with a message naming the op and the offending input when they do not
     * fit. `tensors` holds the node's inputs then outputs. */
    dsk_status (*infer_shapes)(void* self, const dsk_node_view* node, dsk_tensor_desc* tensors);
    /* Reverse-mode rule: given the node, its input/output values in `graph` and the gradients
     * of its outputs (DSK_VALUE_NONE for an output nothing depends on), add nodes (through
     * host->graph_add_node) computing the gradient of each input and write their ids to
     * out_input_grads (DSK_VALUE_NONE: none flows there). NULL = the op has no gradient. */
    dsk_status (*gradient)(void* self, dsk_graph* graph, const dsk_node_view* node,
                           const dsk_value_id* inputs, const dsk_value_id* outputs,
                           const dsk_value_id* output_grads, dsk_value_id* out_input_grads);
    /* ABI 1.3, optional. The inputs this node may write in place, as a bit mask (bit i: input
     * i; inputs past 63 are never written): an optimizer update's parameter and state,
     * BatchNormalization's running statistics in training. A session keeps what kernels derive
     * from a variable (exec_input_version) only while no step writes it, so an op that writes an
     * input without saying so here leaves stale copies behind. NULL (or a schema from before ABI
     * 1.3): the node may write any of its inputs. Must not fail. */
    uint64_t (*written_inputs)(void* self, const dsk_node_view* node);
} dsk_op_schema;

/* A kernel: one op on one backend for one set of input dtypes (dtype 0 = any). */
typedef struct dsk_op_kernel {
    uint32_t struct_size;
    uint32_t input_dtype_count;
    const char* op;
    const char* domain;
    const char* backend; /* name of the dsk_backend_iface it runs on */
    const uint32_t* input_dtypes;
    void* self;
    /* `tensors` holds inputs then outputs; outputs are allocated by the caller. */
    dsk_status (*compute)(void* self, dsk_exec_context* ctx, const dsk_node_view* node,
                          const dsk_tensor_desc* tensors);
} dsk_op_kernel;

/*==============================================================================================
 * Optimizers
 *============================================================================================*/

/* Byte streams used for optimizer / search state (checkpoints). Return non-zero on failure. */
typedef int32_t (*dsk_write_fn)(void* user, const void* data, size_t size);
typedef int32_t (*dsk_read_fn)(void* user, void* data, size_t size);

typedef struct dsk_optimizer_iface {
    uint32_t struct_size;
    const char* name; /* "sgd", "adam" */
    const char* description;
    void* self;
    const dsk_param_spec* params; /* hyperparameters, validated by the kernel */
    size_t param_count;
    /* `hyper` is borrowed for the call. The caller owns *out and releases it with destroy. */
    dsk_status (*create)(void* self, const dsk_config* hyper, dsk_optimizer** out);
    /* One update of `count` parameters in place from their gradients. `session` holds them
     * (their device and memory; NULL for host tensors the caller owns). */
    dsk_status (*step)(dsk_optimizer* opt, dsk_session* session, size_t count,
                       const dsk_tensor_desc* params, const dsk_tensor_desc* grads);
    /* Sets / reads a hyperparameter between steps ("lr"; the stage sets "total_steps" and
     * "steps_per_epoch" before training so that schedules can be computed). */
    dsk_status (*set_hyperparameter)(dsk_optimizer* opt, const char* name, double value);
    dsk_status (*get_hyperparameter)(dsk_optimizer* opt, const char* name, double* out_value);
    dsk_status (*state_save)(dsk_optimizer* opt, dsk_write_fn write, void* user);
    dsk_status (*state_load)(dsk_optimizer* opt, dsk_read_fn read, void* user);
    void (*destroy)(dsk_optimizer* opt);

    /* ABI 1.1, optional (NULL: only `step`). The update as graph nodes, so that it runs on the
     * device that holds the parameters, inside the compiled training step, with no copy of
     * parameters or state to the host. Adds to `graph` nodes that update params[i] in place
     * from grads[i] (value ids in `graph`), with the optimizer's state as graph variables named
     * "<parameter>.<optimizer>.<state>" (so checkpoints of the graph's variables hold it), and
     * writes out_updates[i]: a value that a run must target for params[i] to be updated. After
     * this call the optimizer is in graph mode: `step` refuses, state_save/load keep only the
     * optimizer's own scalars (the step count), and before each run that performs an update
     * the caller calls `feed_update`, which writes this step's constants (learning rate from
     * the schedule, bias corrections) into the session and counts the step. */
    dsk_status (*build_update)(dsk_optimizer* opt, dsk_graph* graph, size_t count,
                               const dsk_value_id* params, const dsk_value_id* grads,
                               dsk_value_id* out_updates);
    dsk_status (*feed_update)(dsk_optimizer* opt, dsk_session* session);
} dsk_optimizer_iface;

/*==============================================================================================
 * Search strategies (ask/tell: Optuna, NNI)
 *============================================================================================*/

typedef enum dsk_trial_state {
    DSK_TRIAL_COMPLETE = 1,
    DSK_TRIAL_PRUNED = 2,
    DSK_TRIAL_FAILED = 3
} dsk_trial_state;

typedef struct dsk_search_iface {
    uint32_t struct_size;
    const char* name; /* "random", "tpe", "asha" */
    const char* description;
    void* self;
    const dsk_param_spec* params; /* the strategy's own options */
    size_t param_count;
    /* `space` is the declared search space (a table: key -> {type, low, high, choices, log,
     * condition}); `options` the strategy's options. Both borrowed. The caller owns *out. */
    dsk_status (*create)(void* self, const dsk_config* space, const dsk_config* options,
                         uint64_t seed, dsk_search** out);
    /* Writes one assignment per key into `out_assignment` (a host-owned table, filled through
     * host->config_set_*). RESOURCE_EXHAUSTED when the space has nothing left (grid).
     * Values given to report and complete are MINIMISED: a caller maximising an objective
     * (accuracy) passes its negation. */
    dsk_status (*suggest)(dsk_search* search, uint64_t trial_id, dsk_config* out_assignment);
    dsk_status (*report)(dsk_search* search, uint64_t trial_id, int64_t step, double value);
    dsk_status (*should_prune)(dsk_search* search, uint64_t trial_id, int32_t* out_prune);
    dsk_status (*complete)(dsk_search* search, uint64_t trial_id, uint32_t state, double value);
    void (*destroy)(dsk_search* search);
    /* ABI 1.2, optional (NULL, or a smaller struct_size: the caller cannot tell this search about
     * trials it did not suggest, and leaves it out of their report/complete calls). Tells the
     * search that trial `trial_id` (a new id, as for suggest) has `assignment` (borrowed; one key
     * per active parameter, as suggest writes them), chosen by someone else: a configuration the
     * user enqueued, or a trial of an earlier study. report and complete follow as for a suggested
     * trial, so the search learns from it. INVALID_ARGUMENT when the assignment does not fit the
     * space. (Optuna's enqueue_trial / add_trial.) */
    dsk_status (*add_trial)(dsk_search* search, uint64_t trial_id, const dsk_config* assignment);
} dsk_search_iface;

/*==============================================================================================
 * Pipeline stages
 *============================================================================================*/

/* A stage kind ("train", "evaluate", "hpo", "env"). The kernel validates the stage's table in
 * the pipeline against `params` before the pipeline starts, then calls run once per stage. */
typedef struct dsk_stage_iface {
    uint32_t struct_size;
    const char* kind;
    const char* description;
    void* self;
    const dsk_param_spec* params;
    size_t param_count;
    /* `ctx` is borrowed for the call: read the config, log, record metrics and results through
     * the host table. Return CANCELLED after host->stage_should_stop said so. */
    dsk_status (*run)(void* self, dsk_stage_context* ctx);
    /* Optional: deeper checks at validation time, before any stage runs (e.g. the tables that
     * name an optimizer or a model, through host->provider_find and host->config_check). The
     * context has no run directory yet; results and metrics are discarded. */
    dsk_status (*validate)(void* self, dsk_stage_context* ctx);
} dsk_stage_iface;

/*==============================================================================================
 * Dataset readers
 *============================================================================================*/

typedef struct dsk_dataset_info {
    uint32_t struct_size;
    uint32_t field_count;       /* e.g. 2: image, label */
    uint64_t sample_count;
    const char* const* field_names;
    const dsk_tensor_desc* fields; /* dtype and per-sample shape of each field; data NULL */
} dsk_dataset_info;

typedef struct dsk_dataset_iface {
    uint32_t struct_size;
    const char* name; /* "idx", "csv" */
    const char* description;
    void* self;
    const dsk_param_spec* params;
    size_t param_count;
    /* `config` borrowed. DATA_LOSS naming the file for truncated or corrupt input. The caller
     * owns *out and releases it with close. */
    dsk_status (*open)(void* self, const dsk_config* config, dsk_dataset** out);
    /* Strings and arrays in *out_info stay valid until close. */
    dsk_status (*info)(dsk_dataset* dataset, dsk_dataset_info* out_info);
    /* Copies samples `indices[0..count)` into `out_fields` (one host tensor per field, leading
     * dimension `count`, allocated by the caller), normalised and, when `seed` != 0, augmented
     * with randomness drawn from `seed` only (the caller derives it from its own seed, the
     * epoch and the batch, so runs are reproducible). seed 0: no augmentation (evaluation). */
    dsk_status (*read)(dsk_dataset* dataset, const uint64_t* indices, size_t count, uint64_t seed,
                       const dsk_tensor_desc* out_fields);
    void (*close)(dsk_dataset* dataset);
} dsk_dataset_iface;

/*==============================================================================================
 * Models (architectures that build themselves into a graph)
 *============================================================================================*/

typedef struct dsk_model_iface {
    uint32_t struct_size;
    const char* name; /* "mlp", "cnn", "resnet" */
    const char* description;
    void* self;
    const dsk_param_spec* params; /* the model's keys in the pipeline (width, depth, ...) */
    size_t param_count;
    /* Adds the model to `graph`, from `input` (e.g. f32 [N, 1, 28, 28]) to logits [N, classes].
     * `training` = 1 for the training graph (dropout active, batch norm on batch statistics).
     * Variables get stable, unique names ("fc1.weight"): checkpoints are keyed by them.
     * `config` is borrowed for the call. */
    dsk_status (*build)(void* self, dsk_graph* graph, const dsk_config* config, dsk_value_id input,
                        int64_t classes, int32_t training, dsk_value_id* out_logits);
} dsk_model_iface;

/*==============================================================================================
 * The host function table (passed to init; valid until the plugin's shutdown returns)
 *============================================================================================*/

typedef enum dsk_log_level {
    DSK_LOG_DEBUG = 0,
    DSK_LOG_INFO = 1,
    DSK_LOG_WARNING = 2,
    DSK_LOG_ERROR = 3,
    DSK_LOG_PROGRESS = 4 /* a progress line (replaces the previous one on a terminal) */
} dsk_log_level;

typedef enum dsk_value_type {
    DSK_VALUE_MISSING = 0,
    DSK_VALUE_BOOL = 1,
    DSK_VALUE_INT = 2,
    DSK_VALUE_FLOAT = 3,
    DSK_VALUE_STRING = 4,
    DSK_VALUE_ARRAY = 5,
    DSK_VALUE_TABLE = 6
} dsk_value_type;

/* A plugin as the kernel knows it (for stages that report on the installation). Strings are
 * owned by the kernel and valid until the next plugin discovery or load. */
typedef struct dsk_plugin_info {
    uint32_t struct_size;
    uint32_t abi_version; /* what the plugin was built against; 0 if never loaded */
    const char* name;
    const char* version;
    const char* kinds;    /* comma-separated: "device,stage" */
    const char* provides; /* comma-separated: "device:cpu,stage:env" */
    const char* library_path;
    const char* manifest_path;
    const char* state; /* "loaded", "available" (not loaded yet), "failed", "shadowed" */
    const char* error; /* why it failed, or "" */
} dsk_plugin_info;

/* A device as the kernel knows it: its backend's answer plus the backend name. `info` points to
 * the kernel's copy of the backend's answer (members the backend did not fill are zero); it and the strings
 * are owned by the kernel and valid until the next plugin load. */
typedef struct dsk_device_entry {
    uint32_t struct_size;
    uint32_t index; /* index within its backend */
    const char* backend;
    const char* plugin;
    const dsk_device_info* info;
} dsk_device_entry;

/* Runs fn(user, begin, end) over [0, n) in chunks of at least `grain` on the kernel's one thread
 * pool, and returns when all chunks are done. */
typedef void (*dsk_parallel_fn)(void* user, size_t begin, size_t end);

typedef struct dsk_host_api {
    uint32_t struct_size;
    uint32_t abi_version; /* the kernel's DSK_ABI_VERSION */
    const char* kernel_version;

    /* Status: create copies `message`; the result is owned by whoever receives it. */
    dsk_status (*status_create)(dsk_status_code code, const char* message);
    dsk_status_code (*status_code)(dsk_status status);   /* DSK_OK for NULL */
    const char* (*status_message)(dsk_status status);    /* "" for NULL; owned by status */
    void (*status_free)(dsk_status status);              /* NULL is fine */

    /* Registration: only during init. The iface is borrowed until the plugin's shutdown, and
     * its name must appear in the plugin's manifest `provides` ("stage:env", "device:cpu").
     * ALREADY_EXISTS when another plugin provides the same name. */
    dsk_status (*register_backend)(dsk_registrar* reg, const dsk_backend_iface* iface);
    dsk_status (*register_op_schema)(dsk_registrar* reg, const dsk_op_schema* schema);
    dsk_status (*register_op_kernel)(dsk_registrar* reg, const dsk_op_kernel* kernel);
    dsk_status (*register_optimizer)(dsk_registrar* reg, const dsk_optimizer_iface* iface);
    dsk_status (*register_search)(dsk_registrar* reg, const dsk_search_iface* iface);
    dsk_status (*register_stage)(dsk_registrar* reg, const dsk_stage_iface* iface);
    dsk_status (*register_dataset)(dsk_registrar* reg, const dsk_dataset_iface* iface);
    dsk_status (*register_model)(dsk_registrar* reg, const dsk_model_iface* iface);

    /* Config tables (dsk_config). `key` is a dotted path ("optimizer.lr"; "layers.2.width").
     * Getters return NOT_FOUND when the key is absent and INVALID_ARGUMENT (naming the key,
     * the file and line) when it has another type; strings returned are owned by the config. */
    dsk_value_type (*config_type)(const dsk_config* cfg, const char* key);
    dsk_status (*config_get_bool)(const dsk_config* cfg, const char* key, int32_t* out);
    dsk_status (*config_get_int)(const dsk_config* cfg, const char* key, int64_t* out);
    dsk_status (*config_get_float)(const dsk_config* cfg, const char* key, double* out);
    dsk_status (*config_get_string)(const dsk_config* cfg, const char* key, const char** out);
    /* Number of elements of an array, or of keys of a table, at `key` ("" = the root). */
    dsk_status (*config_size)(const dsk_config* cfg, const char* key, size_t* out);
    /* The i-th key of the table at `key`, in sorted key order. */
    dsk_status (*config_key_at)(const dsk_config* cfg, const char* key, size_t i,
                                const char** out);
    /* Setters: for tables the host hands out to be filled (search assignments, results). */
    dsk_status (*config_set_bool)(dsk_config* cfg, const char* key, int32_t value);
    dsk_status (*config_set_int)(dsk_config* cfg, const char* key, int64_t value);
    dsk_status (*config_set_float)(dsk_config* cfg, const char* key, double value);
    dsk_status (*config_set_string)(dsk_config* cfg, const char* key, const char* value);
    /* The table at `key` as a config of its own (to hand a provider its section, e.g. a
     * dataset reader its `train_data` table), or NULL when there is no table there. Owned by
     * `cfg` and valid as long as it is. */
    const dsk_config* (*config_table)(const dsk_config* cfg, const char* key);
    /* Arrays of numbers (per-class accuracy, a row of a confusion matrix). Copied. */
    dsk_status (*config_set_ints)(dsk_config* cfg, const char* key, const int64_t* values, size_t count);
    dsk_status (*config_set_floats)(dsk_config* cfg, const char* key, const double* values, size_t count);

    /* Running stages. */
    const dsk_config* (*stage_config)(dsk_stage_context* ctx); /* this stage's table */
    const char* (*stage_run_dir)(dsk_stage_context* ctx);      /* absolute path */
    void (*stage_log)(dsk_stage_context* ctx, dsk_log_level level, const char* message);
    /* Appends one line to metrics.jsonl. */
    dsk_status (*stage_metric)(dsk_stage_context* ctx, const char* name, double value,
                               int64_t step);
    /* The stage's results table in summary.json; fill it with config_set_*. */
    dsk_config* (*stage_results)(dsk_stage_context* ctx);
    /* 1 once the user asked to stop (Ctrl-C): save a checkpoint and return CANCELLED. */
    int32_t (*stage_should_stop)(dsk_stage_context* ctx);

    /* What the kernel has loaded (for reporting stages). Indices are stable during a stage. */
    size_t (*plugin_count)(dsk_stage_context* ctx);
    dsk_status (*plugin_info)(dsk_stage_context* ctx, size_t index, dsk_plugin_info* out);
    size_t (*device_count)(dsk_stage_context* ctx);
    dsk_status (*device_entry)(dsk_stage_context* ctx, size_t index, dsk_device_entry* out);

    /* The kernel's thread pool: plugins use it instead of their own threads. */
    uint32_t (*thread_count)(void);
    void (*parallel_for)(size_t n, size_t grain, dsk_parallel_fn fn, void* user);

    /* Providers by kind and name ("optimizer", "adam"), loading the plugin that provides them
     * when needed. *out_iface points to the registered dsk_<kind>_iface (borrowed). NOT_FOUND
     * names the kind, the name, the names known and the search path. */
    dsk_status (*provider_find)(dsk_stage_context* ctx, const char* kind, const char* name,
                                const void** out_iface);
    /* Checks the table at `key` of the stage's config against `params` (unknown keys, types,
     * ranges, choices, required keys; file:line:column in every message) and fills in
     * defaults. Keys in `reserved` (NULL-terminated, may be NULL) are the caller's. */
    dsk_status (*config_check)(dsk_stage_context* ctx, const char* key, const dsk_param_spec* params,
                               size_t param_count, const char* const* reserved);
    /* Progress of the running stage: fraction in [0, 1] and a short text ("epoch 2/10 loss
     * 0.41 2301 img/s"). Shown on one updating line; not written to log.txt. */
    void (*stage_progress)(dsk_stage_context* ctx, double fraction, const char* text);

    /* Graphs. A graph is built by a stage and the models it calls, differentiated and placed on
     * a device as a session. Values are numbered in creation order. The caller owns the graph
     * and releases it with graph_destroy. */
    dsk_status (*graph_create)(dsk_stage_context* ctx, dsk_graph** out_graph);
    void (*graph_destroy)(dsk_graph* graph);
    /* A value fed before each run (a batch). Only dtype, ndim and shape of `desc` are read. */
    dsk_status (*graph_input)(dsk_graph* graph, const char* name, const dsk_tensor_desc* desc,
                              dsk_value_id* out_value);
    /* State that persists across runs of a session (weights, running statistics), initialised
     * at session_create with `init`: "zeros", "ones", "uniform" (U(-scale, scale)) or "normal"
     * (N(0, scale^2)), from the session's seed and the variable's name. */
    dsk_status (*graph_variable)(dsk_graph* graph, const char* name, const dsk_tensor_desc* desc,
                                 uint32_t flags, const char* init, double scale,
                                 dsk_value_id* out_value);
    /* A constant; `value`'s host data is copied. */
    dsk_status (*graph_constant)(dsk_graph* graph, const dsk_tensor_desc* value,
                                 dsk_value_id* out_value);
    /* Adds one node (schema looked up by `op`, "domain.op" outside the core set), infers its
     * output shapes and writes their ids. INVALID_ARGUMENT names the op and the problem. */
    dsk_status (*graph_add_node)(dsk_graph* graph, const char* op, const dsk_attr* attrs,
                                 size_t attr_count, const dsk_value_id* inputs, size_t input_count,
                                 dsk_value_id* out_outputs, size_t output_count);
    /* dtype, ndim and shape of a value (data, buffer and device NULL). */
    dsk_status (*graph_value_desc)(dsk_graph* graph, dsk_value_id value, dsk_tensor_desc* out);
    /* Reverse mode: adds the nodes computing d(loss)/d(wrt[i]) for a scalar `loss`, by the
     * schemas' gradient rules. out_grads[i] = DSK_VALUE_NONE when wrt[i] does not affect loss. */
    dsk_status (*graph_gradients)(dsk_graph* graph, dsk_value_id loss, const dsk_value_id* wrt,
                                  size_t count, dsk_value_id* out_grads);
    /* The variables, in creation order; the name is owned by the graph and valid until the
     * graph is next changed (copy it before adding values or nodes). */
    size_t (*graph_variable_count)(dsk_graph* graph);
    dsk_status (*graph_variable_at)(dsk_graph* graph, size_t index, dsk_value_id* out_value,
                                    const char** out_name, uint32_t* out_flags);

    /* Sessions: a graph placed on a device ("cpu"; NULL = the pipeline's preferred device),
     * with its variables allocated and initialised. The graph is copied: it may be destroyed
     * afterwards. The caller owns the session and releases it with session_destroy. */
    dsk_status (*session_create)(dsk_stage_context* ctx, dsk_graph* graph, const char* device,
                                 uint64_t seed, dsk_session** out_session);
    void (*session_destroy)(dsk_session* session);
    /* Copies host data (`host`'s data, dtype and shape must match) into an input or variable. */
    dsk_status (*session_write)(dsk_session* session, dsk_value_id value,
                                const dsk_tensor_desc* host);
    /* Computes `targets` (and what they need) from the inputs written since the last run. */
    dsk_status (*session_run)(dsk_session* session, const dsk_value_id* targets, size_t count);
    /* The storage of a value: an input, variable or constant at any time; a computed value
     * after a run that had it among its targets, until the next run (other values share memory
     * and are refused: FAILED_PRECONDITION). Optimizers update variables in place through it.
     * `data` is NULL where the memory is not host-visible (a device's own memory). */
    dsk_status (*session_tensor)(dsk_session* session, dsk_value_id value, dsk_tensor_desc* out);
    /* Copies a value to host memory (`host`'s data, dtype and shape must match). */
    dsk_status (*session_read)(dsk_session* session, dsk_value_id value,
                               const dsk_tensor_desc* host);

    /* How many runs the session has made; random ops draw from it. A stage resuming from a
     * checkpoint restores it, so the random sequence continues exactly where it stopped. */
    uint64_t (*session_run_count)(dsk_session* session);
    dsk_status (*session_set_run_count)(dsk_session* session, uint64_t runs);

    /* For kernels: a seed for this node in this run (from the session seed, the run count and
     * the node), so random ops (dropout) are reproducible. */
    uint64_t (*exec_seed)(dsk_exec_context* ctx);

    /* ABI 1.1. For kernels: the queue of this node's device in this session. A backend whose
     * kernels run asynchronously (a GPU) records the node's work on it; the kernel flushes the
     * queue and waits on the fence before the host touches the results (session_read, the end
     * of session_run). Borrowed: valid during the compute call. */
    dsk_queue* (*exec_queue)(dsk_exec_context* ctx);

    /* ABI 1.1. An empty table owned by the caller (a search assignment to hand to `suggest`, a
     * stage's scratch), filled with config_set_* and read with config_get_*; config_destroy
     * releases it and every view config_table gave of it. */
    dsk_config* (*config_create)(void);
    void (*config_destroy)(dsk_config* cfg);
    /* ABI 1.1. The absolute path of the pipeline file this run started from, also on --resume
     * (not the run directory's config.toml); "" for a pipeline that came from no file. Valid
     * during the stage. Relative paths in a stage's keys are relative to its folder. */
    const char* (*stage_pipeline_file)(dsk_stage_context* ctx);

    /* ABI 1.3. For kernels: the version of input `input` of this node, for keeping something
     * derived from it across runs (weights packed into the kernel's own layout: ONNX Runtime's
     * PrePack, oneDNN's weight reorder). Non-zero when the input is a variable or constant of a
     * session that no step of this run writes and that no session_tensor has handed out, or a
     * value the run computes from such values only (a weight folded with its batch norm): the
     * number then stays the same from run to run until the value changes (session_write, or a
     * run of another plan that writes it), and never comes back for other contents of that
     * value. 0: the input may differ on every run (a run's input, another computed value, a
     * value an optimizer updates, an eager op's operand): derive nothing from it. */
    uint64_t (*exec_input_version)(dsk_exec_context* ctx, uint32_t input);
    /* ABI 1.3. For kernels: this node's cache in this session's plan, NULL until the kernel sets
     * one. The kernel owns what it stores; `release` (NULL: nothing to release) is called on the
     * old cache when exec_set_cache replaces it, and on the last one when the plan is freed (the
     * session destroyed, or its plans rebuilt for new shapes), possibly on another thread than
     * the runs'. Calls of one node never overlap, so the cache needs no lock. Eager ops have no
     * cache: exec_cache returns NULL and exec_set_cache releases what it is given at once. */
    void* (*exec_cache)(dsk_exec_context* ctx);
    void (*exec_set_cache)(dsk_exec_context* ctx, void* cache, void (*release)(void* cache));

    /* Append new members here only. */
} dsk_host_api;

/*==============================================================================================
 * The plugin descriptor and entry point
 *============================================================================================*/

/* Returned by dsk_plugin_query; static storage, valid while the library is loaded. It must
 * agree with the manifest beside the library (name, version, provides). */
typedef struct dsk_plugin_descriptor {
    uint32_t struct_size;
    uint32_t abi_version; /* DSK_ABI_VERSION the plugin was compiled against */
    const char* name;
    const char* version; /* semantic version "MAJOR.MINOR.PATCH" */
    const char* description;
    const char* const* provides; /* NULL-terminated: "kind:name" for everything registered */
    /* Registers providers through host->register_*. `host` stays valid until shutdown. The
     * plugin may keep per-load state in *out_state (passed back to shutdown). A non-NULL
     * status fails the load; the plugin's message is shown to the user as is. */
    dsk_status (*init)(const dsk_host_api* host, dsk_registrar* reg, void** out_state);
    /* Optional. Called once when the kernel unloads the plugin; the library itself stays mapped
     * while a session still uses its code. Keep the interfaces that sessions call (backend,
     * kernels, schemas) in static storage so they outlive shutdown. */
    void (*shutdown)(void* state);
} dsk_plugin_descriptor;

/* The one exported symbol. `host_abi_version` is the kernel's DSK_ABI_VERSION; the plugin may
 * return NULL if it cannot work with it (the kernel then reports an incompatible plugin). */
typedef const dsk_plugin_descriptor* (*dsk_plugin_query_fn)(uint32_t host_abi_version);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DSK_PLUGIN_H_ */
