// template_stage.cpp - `template-hello`: logs a greeting `repeat` times and records it.
//
// In a pipeline:
//     [[stages]]
//     kind = "template-hello"
//     greeting = "hello from my plugin"
//     repeat = 3
#include "template_stage.h"

#include <cstdint>
#include <iterator>
#include <string>

namespace template_plugin {
namespace {

// The keys this stage accepts. The kernel checks a pipeline against them before anything runs
// (unknown keys, types, the 1..10 range), so run_hello() can trust what it reads.
const dsk_param_spec kHelloParams[] = {
    dsk::param_string("greeting", "what to log", "\"hello\""),
    dsk::param_int("repeat", "how many times to log it", "1", 1, 10),
};

void run_hello(dsk::StageContext& context) {
    const dsk::Config config = context.config();
    const std::string greeting = config.get_or("greeting", "hello");
    const int64_t repeat = config.get_or<int64_t>("repeat", 1);

    for (int64_t i = 0; i < repeat; ++i) {
        context.throw_if_stopped();  // Ctrl-C ends the stage as CANCELLED
        context.info(greeting);
        context.metric("greetings", static_cast<double>(i + 1), i);
    }

    // Lands in this stage's entry of summary.json.
    dsk::Table results = context.results();
    results.set("greeting", greeting);
    results.set("repeat", repeat);
}

}  // namespace

dsk::Stage hello_stage() {
    return dsk::Stage{"template-hello",
                      "Logs a greeting (the template plugin's example stage)",
                      {std::begin(kHelloParams), std::end(kHelloParams)},
                      run_hello};
}

}  // namespace template_plugin
