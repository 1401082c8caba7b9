// What a finished study leaves in its directory: trials.csv and trials.json, the best-so-far
// curve as a self-contained HTML page (inline SVG), the table for the log, and best.toml.
#pragma once

#include <string>
#include <vector>

#include "study.h"

namespace dsk::hpo {

// The trial with the best objective among the complete ones; nullptr when none completed.
const TrialRecord* best_trial(const std::vector<TrialRecord>& trials, bool maximize);

// The finalist with the best objective among the complete ones; nullptr when none completed.
const FinalistRecord* best_finalist(const std::vector<FinalistRecord>& finalists, bool maximize);
// One line per finalist: trial, state, objective in the search, objective as a finalist, seconds (and error).
std::string finalists_table(const std::vector<FinalistRecord>& finalists, const StudySettings& settings);
void write_finalists_json(const std::string& path, const std::vector<FinalistRecord>& finalists);

// One line per trial: id, state, objective, steps, seconds, parameters (and error).
std::string trials_table(const std::vector<TrialRecord>& trials, const search::Space& space);

void write_trials_csv(const std::string& path, const std::vector<TrialRecord>& trials, const search::Space& space);
void write_trials_json(const std::string& path, const std::vector<TrialRecord>& trials, const search::Space& space);
void write_best_curve_html(const std::string& path, const std::vector<TrialRecord>& trials, const StudySettings& settings);
// The best trial's resolved pipeline (its config.toml), with a header saying where it came from
// (and, when finalists chose it, its objective as a finalist): `dsk run best.toml` retrains the
// winner from scratch.
void export_best_pipeline(const std::string& path, const TrialRecord& best, const StudySettings& settings,
                          const search::Space& space, const FinalistRecord* chosen = nullptr);

// "trials/0007" under the study directory.
std::string trial_dir_name(uint64_t id);

}  // namespace dsk::hpo
