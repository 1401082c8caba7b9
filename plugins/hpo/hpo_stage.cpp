// The `hpo` stage: a study whose parameters are set in the trial pipeline as they are, each at
// its `key` (study_stage.cpp does the rest).
#include "hpo_stage.h"

#include "study_stage.h"

namespace dsk::hpo {

Stage hpo_stage() {
    return Stage{"hpo",
                 "Hyperparameter optimisation: runs a base pipeline as trials (separate dsk processes) chosen by a search strategy",
                 study_params(),
                 [](StageContext& ctx) { run_study_stage(ctx, {}); },
                 [](StageContext& ctx) { validate_study(ctx, {}); }};
}

}  // namespace dsk::hpo
