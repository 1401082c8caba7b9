// The data-idx plugin: descriptor and registration only (the reader is in idx_dataset.cpp,
// the file format in idx_file.cpp).
#include "idx_dataset.h"

static void register_data_idx(dsk::Registrar& reg) {
    reg.dataset(dsk::idx::idx_dataset_iface());
}

static const char* const provides[] = {"dataset:idx", nullptr};
DSK_PLUGIN_DEFINE("Reads MNIST-format (IDX) datasets such as Fashion-MNIST", provides,
                  register_data_idx);
