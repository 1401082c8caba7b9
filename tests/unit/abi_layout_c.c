/* dsk_plugin.h compiled as C99: it must stand alone (only <stdint.h>/<stddef.h>) and give the
 * same struct sizes as C++ (checked by abi_layout_tests.cpp). */
#include <dsk/dsk_plugin.h>

int dsk_abi_layout_c_sizes_match(void) {
    return 1
        && sizeof(dsk_tensor_desc) == 176
        && sizeof(dsk_attr) == 64
        && sizeof(dsk_param_spec) == 64
        && sizeof(dsk_device_info) == 56
        && sizeof(dsk_node_view) == 72
        && sizeof(dsk_graph_view) == 40
        && sizeof(dsk_backend_iface) == 184
        && sizeof(dsk_op_schema) == 72
        && sizeof(dsk_op_kernel) == 56
        && sizeof(dsk_optimizer_iface) == 96
        && sizeof(dsk_search_iface) == 96
        && sizeof(dsk_stage_iface) == 56
        && sizeof(dsk_dataset_info) == 32
        && sizeof(dsk_dataset_iface) == 80
        && sizeof(dsk_plugin_info) == 72
        && sizeof(dsk_device_entry) == 32
        && sizeof(dsk_host_api) == 288
        && sizeof(dsk_plugin_descriptor) == 56;
}
