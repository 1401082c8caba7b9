#include "dataset_reader.h"

namespace dsk::train {
namespace {
const char* const kDatasetReserved[] = {"reader", nullptr};

std::string reader_name(const Config& stage, const std::string& key) {
    return stage.get_or(key + ".reader", std::string("idx"));
}
}  // namespace

void check_dataset_config(const StageContext& ctx, const std::string& key) {
    const auto& reader = ctx.provider<dsk_dataset_iface>("dataset", reader_name(ctx.config(), key));
    ctx.check_config(key, reader.params, reader.param_count, kDatasetReserved);
}

DatasetReader::DatasetReader(const StageContext& ctx, const std::string& key) : key_(key) {
    const Config stage = ctx.config();
    const std::string reader = reader_name(stage, key);
    iface_ = &ctx.provider<dsk_dataset_iface>("dataset", reader);
    check(iface_->open(iface_->self, stage.table(key), &dataset_), (stage.path(key) + " (reader " + reader + ")").c_str());
    dsk_dataset_info info{};
    info.struct_size = sizeof info;
    check(iface_->info(dataset_, &info));
    if (info.field_count != 2 || info.fields[0].dtype != DSK_DTYPE_F32 || info.fields[1].dtype != DSK_DTYPE_I64 ||
        info.fields[1].ndim != 0)
        throw Error(DSK_INVALID_ARGUMENT, stage.path(key) + ": reader '" + reader +
                                              "' must give two fields, an f32 image and an i64 scalar label");
    size_ = info.sample_count;
    image_shape_ = shape_of(info.fields[0]);
    image_size_ = numel(info.fields[0]);
}

DatasetReader::~DatasetReader() {
    if (dataset_) iface_->close(dataset_);
}

void DatasetReader::read(const std::vector<uint64_t>& indices, uint64_t seed, float* images, int64_t* labels) const {
    const int64_t n = static_cast<int64_t>(indices.size());
    std::vector<int64_t> image_batch = {n};
    image_batch.insert(image_batch.end(), image_shape_.begin(), image_shape_.end());
    dsk_tensor_desc fields[2] = {host_tensor(DSK_DTYPE_F32, image_batch, images), host_tensor(DSK_DTYPE_I64, {n}, labels)};
    check(iface_->read(dataset_, indices.data(), indices.size(), seed, fields), ("reading " + key_).c_str());
}

void DatasetReader::check_labels(const std::vector<uint64_t>& indices, const int64_t* labels, int64_t classes) const {
    for (size_t i = 0; i < indices.size(); ++i)
        if (labels[i] < 0 || labels[i] >= classes)
            throw Error(DSK_DATA_LOSS, key_ + ": label " + std::to_string(labels[i]) + " of sample " + std::to_string(indices[i]) +
                                           " is outside [0, " + std::to_string(classes) +
                                           "); set `classes` to the dataset's number of classes");
}

}  // namespace dsk::train
