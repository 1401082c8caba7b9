// Accuracy, loss, per-class accuracy and the confusion matrix of a classifier over a dataset.
#pragma once

#include <string>
#include <vector>

#include "classifier.h"
#include "dataset_reader.h"

namespace dsk::train {

struct Evaluation {
    double accuracy = 0, loss = 0;
    uint64_t samples = 0;
    std::vector<double> per_class_accuracy;
    std::vector<std::vector<int64_t>> confusion;  // [true class][predicted class]

    // Writes test_accuracy, test_loss, test_samples, per_class_accuracy and confusion_matrix.
    void write_results(Table& results) const;
    // Writes <prefix>_accuracy, <prefix>_loss and <prefix>_samples only.
    void write_totals(Table& results, const std::string& prefix) const;
};

// `model` must be an evaluation graph (training = false) in `session`; batches of the graph's
// batch size, the last one smaller. Samples are read without augmentation.
Evaluation evaluate(const Classifier& model, const Session& session, const DatasetReader& data, int64_t classes,
                    int64_t batch);
// The same over the samples `indices` of `data` only (a validation split).
Evaluation evaluate(const Classifier& model, const Session& session, const DatasetReader& data,
                    const std::vector<uint64_t>& indices, int64_t classes, int64_t batch);

}  // namespace dsk::train
