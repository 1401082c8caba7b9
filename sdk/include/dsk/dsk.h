/* dsk.h - embed the dsk kernel in a program (the host C API, exported by libdsk).
 *
 * A dsk_kernel holds everything: its plugin search path, the plugins it loaded, their registries
 * and devices. There is no global state, so two kernels in one process never see each other.
 * A kernel is used from one thread at a time. Every call that can fail returns a dsk_status_code
 * and leaves a message in dsk_kernel_last_error(); no exception leaves this API.
 *
 *     dsk_kernel* k = NULL;
 *     if (dsk_kernel_create(&k) != DSK_OK) return 1;
 *     dsk_kernel_add_plugin_path(k, "/opt/vendor/dsk-plugins");
 *     dsk_run_options opts = {sizeof opts};
 *     opts.pipeline_path = "configs/env.toml";
 *     if (dsk_kernel_run_pipeline(k, &opts) != DSK_OK)
 *         fprintf(stderr, "%s\n", dsk_kernel_last_error(k));
 *     dsk_kernel_destroy(k);
 *
 * Plugin search order: paths given with dsk_kernel_add_plugin_path (a pipeline's `[plugins]
 * path` is added first for its run), then DSK_PLUGIN_PATH (':'-separated), then the install
 * directory (<dir of libdsk>/dsk/plugins). The first plugin found with a given name wins.
 */
#ifndef DSK_H_
#define DSK_H_

#include "dsk/dsk_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define DSK_API __declspec(dllimport)
#else
#define DSK_API __attribute__((visibility("default")))
#endif

typedef struct dsk_kernel dsk_kernel;

/* The library's version ("0.1.0") and the plugin ABI it implements (DSK_ABI_VERSION). */
DSK_API const char* dsk_version(void);
DSK_API uint32_t dsk_abi_version(void);

/* Creates a kernel with an empty registry. Nothing is loaded until asked. Caller owns *out. */
DSK_API dsk_status_code dsk_kernel_create(dsk_kernel** out_kernel);
/* Unloads every plugin (calling each one's shutdown) and frees the kernel. NULL is fine.
 * Destroy graphs and sessions first; a session still alive keeps the libraries whose code it
 * calls loaded, so destroying it afterwards does not crash, but its plugins are shut down. */
DSK_API void dsk_kernel_destroy(dsk_kernel* kernel);

/* The message of the last failed call on this kernel ("" if none); valid until the next call. */
DSK_API const char* dsk_kernel_last_error(const dsk_kernel* kernel);

/* Adds a directory to search before DSK_PLUGIN_PATH and the install directory. Copied. */
DSK_API dsk_status_code dsk_kernel_add_plugin_path(dsk_kernel* kernel, const char* directory);

/* Reads every manifest on the search path (loads nothing). Called implicitly by the functions
 * below; call it again after adding paths. A broken candidate never fails this call: it is
 * listed with its reason. */
DSK_API dsk_status_code dsk_kernel_discover(dsk_kernel* kernel);
/* Loads every plugin found (what `dsk plugins list` and `dsk doctor` do). Returns DSK_OK even
 * when some fail; their reasons are in dsk_kernel_plugin_info(). */
DSK_API dsk_status_code dsk_kernel_load_all(dsk_kernel* kernel);
/* Loads one plugin (and what it requires) by name. `version_range` may be NULL ("*"). */
DSK_API dsk_status_code dsk_kernel_load_plugin(dsk_kernel* kernel, const char* name,
                                               const char* version_range);

/* Every candidate found (loaded, available, failed or shadowed), in search order. The info's
 * strings are owned by the kernel and valid until the next discover/load call. */
DSK_API size_t dsk_kernel_plugin_count(const dsk_kernel* kernel);
DSK_API dsk_status_code dsk_kernel_plugin_info(const dsk_kernel* kernel, size_t index,
                                               dsk_plugin_info* out_info);
/* Extra lines for `dsk doctor`: library files without a manifest, unreadable directories. */
DSK_API size_t dsk_kernel_diagnostic_count(const dsk_kernel* kernel);
DSK_API const char* dsk_kernel_diagnostic(const dsk_kernel* kernel, size_t index);
/* The directories searched, in order. */
DSK_API size_t dsk_kernel_search_path_count(dsk_kernel* kernel);
DSK_API const char* dsk_kernel_search_path(dsk_kernel* kernel, size_t index);

/* Every device of every loaded backend, usable or not (score <= 0 with a reason). */
DSK_API size_t dsk_kernel_device_count(const dsk_kernel* kernel);
DSK_API dsk_status_code dsk_kernel_device_entry(const dsk_kernel* kernel, size_t index,
                                                dsk_device_entry* out_entry);

/* Pipelines. `overrides` are "key.path=value" strings (as `dsk run --set`). */
typedef struct dsk_run_options {
    uint32_t struct_size;
    uint32_t dry_run; /* 1: validate, resolve, load plugins and print the plan; run nothing */
    const char* pipeline_path;
    const char* const* overrides;
    size_t override_count;
    const char* run_dir; /* NULL: runs/<pipeline>-<timestamp>/ under the current directory */
    /* Optional: receives every log line (also written to the run's log.txt). */
    void (*on_log)(void* user, dsk_log_level level, const char* message);
    void* on_log_user;
    /* Resume the run in this directory: its resolved config.toml is run again in the same
     * directory, and stages continue from the checkpoints they left there (`dsk run --resume`).
     * pipeline_path and overrides are then ignored. */
    const char* resume_dir;
    /* 1: log each session's plan (placement, transfers) as the stages create them
     * (`dsk run --explain`). */
    uint32_t explain;
} dsk_run_options;

/* Parses the pipeline, applies overrides, loads the plugins it needs and checks every key
 * against their schemas. DSK_INVALID_ARGUMENT / DSK_NOT_FOUND with every problem found (one per
 * line, each with file:line:column) in dsk_kernel_last_error(). */
DSK_API dsk_status_code dsk_kernel_validate_pipeline(dsk_kernel* kernel,
                                                     const dsk_run_options* options);
/* Validates, then runs every stage in order, writing the run directory. */
DSK_API dsk_status_code dsk_kernel_run_pipeline(dsk_kernel* kernel,
                                                const dsk_run_options* options);
/* The run directory of the last run ("" before one); valid until the next run. */
DSK_API const char* dsk_kernel_last_run_dir(const dsk_kernel* kernel);
/* The pipeline the last successful validate_pipeline or run_pipeline resolved, as TOML: the
 * file with its overrides applied and every default filled in (what a run writes to its
 * config.toml); "" before one. Valid until the next validate or run. */
DSK_API const char* dsk_kernel_last_resolved_pipeline(const dsk_kernel* kernel);
/* Asks a running pipeline to stop (async-signal-safe: call it from a SIGINT handler). */
DSK_API void dsk_kernel_request_stop(dsk_kernel* kernel);

/* Graphs and sessions outside a pipeline (serving, tests, tools). Build a graph with the
 * graph_* members of dsk_host() and run it with its session_* members, exactly as a stage does.
 * The caller owns both and releases them with host->graph_destroy / host->session_destroy,
 * before the kernel. `device` names a backend ("cpu") or lists several in order ("vulkan,cpu"):
 * each node runs on the first listed backend that has a kernel for it and accepts it
 * (supports_op); with one name, a node that backend cannot run is an error. Op schemas and
 * kernels are loaded from the plugins that provide them. */
DSK_API const dsk_host_api* dsk_host(void);
DSK_API dsk_status_code dsk_kernel_graph_create(dsk_kernel* kernel, dsk_graph** out_graph);
DSK_API dsk_status_code dsk_kernel_session_create(dsk_kernel* kernel, dsk_graph* graph, const char* device,
                                                  uint64_t seed, dsk_session** out_session);
/* Where a session placed node `node` (graph order): the backend's name, owned by the session;
 * NULL for a node index out of range. */
DSK_API const char* dsk_session_node_backend(const dsk_session* session, uint32_t node);
/* The session's placement report as JSON (backends, nodes per backend, fallbacks with the
 * reason, transfers per run); owned by the session, valid until the next call or its end. */
DSK_API const char* dsk_session_placement_json(dsk_session* session);

/* Eager execution: ops run as they are called, on one device ("cpu" when NULL), through the
 * same op schemas and kernels as graphs. Tensors are immutable and reference counted (a new
 * tensor has one reference; retain/release). Destroy tensors and functions before their eager
 * context, and eager contexts before the kernel. Errors: the status code, and the message in
 * dsk_kernel_last_error().
 *
 * Tracing (dsk::jit in dsk.hpp): trace_begin(inputs) ... ops ... trace_end(outputs) records
 * the ops (they also run) into a graph whose inputs are the listed tensors; any other tensor an
 * op reads that the trace did not make (a weight) becomes a constant of the graph. The result is
 * a function compiled into a session (fusion, folding, memory planning) that function_run
 * replays on new inputs of the same dtypes and shapes.
 *
 * Autograd: set_requires_grad(w, 1) puts `w` on the context's tape; every op with an input that
 * requires a gradient is recorded there (its outputs then require one too; the other tensors it
 * reads are kept as they are). backward(loss, wrt) differentiates the recorded ops with the
 * op schemas' gradient rules (as graph_gradients does), runs the gradient ops eagerly and
 * returns d(loss)/d(wrt[i]); then the tape is consumed: nothing requires a gradient any more,
 * and the next tape starts with the next set_requires_grad. Inside a trace, the gradient ops are
 * traced like the others, so a whole training step compiles into one graph. */
typedef struct dsk_eager dsk_eager;
typedef struct dsk_eager_tensor dsk_eager_tensor;
typedef struct dsk_eager_function dsk_eager_function;

DSK_API dsk_status_code dsk_eager_create(dsk_kernel* kernel, const char* device, uint64_t seed, dsk_eager** out);
DSK_API void dsk_eager_destroy(dsk_eager* eager);
/* A tensor holding a copy of `host` (contiguous). */
DSK_API dsk_status_code dsk_eager_tensor_create(dsk_eager* eager, const dsk_tensor_desc* host,
                                                dsk_eager_tensor** out);
DSK_API void dsk_eager_tensor_retain(dsk_eager_tensor* tensor);
DSK_API void dsk_eager_tensor_release(dsk_eager_tensor* tensor);
/* dtype and shape (device, buffer and data are the tensor's; data NULL on device memory). */
DSK_API dsk_status_code dsk_eager_tensor_desc(const dsk_eager_tensor* tensor, dsk_tensor_desc* out);
/* Copies the tensor into `host` (same dtype and shape, contiguous). */
DSK_API dsk_status_code dsk_eager_tensor_read(dsk_eager_tensor* tensor, const dsk_tensor_desc* host);
/* Runs `op` ("domain.op" outside the core set) now; writes `output_count` new tensors. */
DSK_API dsk_status_code dsk_eager_op(dsk_eager* eager, const char* op, const dsk_attr* attrs, size_t attr_count,
                                     dsk_eager_tensor* const* inputs, size_t input_count,
                                     dsk_eager_tensor** outputs, size_t output_count);
DSK_API dsk_status_code dsk_eager_trace_begin(dsk_eager* eager, dsk_eager_tensor* const* inputs, size_t count);
/* Ends the trace and compiles it; `outputs` must be tensors the traced ops made. */
DSK_API dsk_status_code dsk_eager_trace_end(dsk_eager* eager, dsk_eager_tensor* const* outputs, size_t count,
                                            dsk_eager_function** out_function);
/* Drops a running trace (after an error in the traced code). */
DSK_API void dsk_eager_trace_cancel(dsk_eager* eager);
DSK_API dsk_status_code dsk_eager_function_run(dsk_eager_function* function, dsk_eager_tensor* const* inputs,
                                               size_t input_count, dsk_eager_tensor** outputs, size_t output_count);
DSK_API void dsk_eager_function_destroy(dsk_eager_function* function);

/* Marks `tensor` as requiring a gradient (1), starting a tape when none is running, or unmarks
 * it (0; FAILED_PRECONDITION for a tensor computed from marked ones). The tape holds a reference
 * to each tensor it records until it is consumed or cleared. */
DSK_API dsk_status_code dsk_eager_tensor_set_requires_grad(dsk_eager_tensor* tensor, int32_t requires_grad);
/* 1 when `tensor` is on the running tape and requires a gradient (marked, or computed from a
 * marked tensor), else 0. */
DSK_API int32_t dsk_eager_tensor_requires_grad(const dsk_eager_tensor* tensor);
/* Keep the tape after dsk_eager_backward, to differentiate the same ops again. */
#define DSK_EAGER_RETAIN_TAPE 1u
/* d(loss)/d(wrt[i]) into out_grads[i] (new tensors, owned by the caller; NULL where the loss
 * does not depend on wrt[i]). `loss` is a scalar f32 computed on the tape; every wrt[i] requires
 * a gradient (INVALID_ARGUMENT otherwise). Consumes the tape unless `flags` has
 * DSK_EAGER_RETAIN_TAPE: a second backward of the same loss is FAILED_PRECONDITION. */
DSK_API dsk_status_code dsk_eager_backward(dsk_eager* eager, dsk_eager_tensor* loss, dsk_eager_tensor* const* wrt,
                                           size_t count, uint32_t flags, dsk_eager_tensor** out_grads);
/* Drops the tape without differentiating (a forward pass that needs no gradient). */
DSK_API void dsk_eager_tape_clear(dsk_eager* eager);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DSK_H_ */
