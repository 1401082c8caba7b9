// What the hpo and nas stages share: the keys of a study, its validation, and its run. A stage
// kind adds hooks: extra checks of the space, how an assignment becomes trial settings, and what
// else to export for the winner.
#pragma once

#include <functional>
#include <vector>

#include "study.h"

namespace dsk::hpo {

struct StudyHooks {
    // Extra checks of the space at validation time (throw dsk::Error naming the problem).
    std::function<void(StageContext&, const search::Space&)> validate;
    // Sets settings.trial_settings / settings.reject from the stage's config before the study.
    std::function<void(StageContext&, const search::Space&, StudySettings&)> configure;
    // After best.toml is written: more exports of the winner.
    std::function<void(StageContext&, const search::Space&, const StudySettings&, const TrialRecord&)> export_best;
};

// The keys every study stage has (docs/automl.md).
std::vector<dsk_param_spec> study_params();
void validate_study(StageContext& ctx, const StudyHooks& hooks);
void run_study_stage(StageContext& ctx, const StudyHooks& hooks);

}  // namespace dsk::hpo
