// Every pipeline mistake is found before anything runs, and named with file:line:column, the key
// and what would fix it.
#include <doctest/doctest.h>

#include "pipeline_fixture.h"

TEST_CASE("a valid pipeline validates - defaults and all") {
    PipelineFixture f;
    CHECK(f.validation_error("[[stages]]\nkind = \"echo\"\nmessage = \"hi\"\n") == "");
}

TEST_CASE("unknown keys get a did-you-mean - with file:line:column") {
    PipelineFixture f;
    std::string e = f.validation_error("[[stages]]\nkind = \"echo\"\nmessage = \"hi\"\ncuont = 3\n");
    CHECK(has(e, "p.toml:6:1: stages[0] (echo): unknown key 'cuont'; did you mean 'count'?"));
    e = f.validation_error("[pipelin]\nname = \"x\"\n[[stages]]\nkind = \"echo\"\nmessage = \"hi\"\n");
    CHECK(has(e, "unknown key 'pipelin'; did you mean 'pipeline'?"));
    e = f.validation_error("[devices]\nfalback = \"warn\"\n[[stages]]\nkind = \"echo\"\nmessage = \"hi\"\n");
    CHECK(has(e, "[devices]: unknown key 'falback'; did you mean 'fallback'?"));
}

TEST_CASE("wrong types and out-of-range values name the expected type or range") {
    PipelineFixture f;
    std::string e = f.validation_error("[[stages]]\nkind = \"echo\"\nmessage = \"hi\"\ncount = \"five\"\n");
    CHECK(has(e, "p.toml:6:9: stages[0] (echo).count: expected integer, got string 'five'"));
    e = f.validation_error("[[stages]]\nkind = \"echo\"\nmessage = \"hi\"\ncount = 11\n");
    CHECK(has(e, "stages[0] (echo).count = 11 is out of range [1, 10]"));
    e = f.validation_error("[[stages]]\nkind = \"echo\"\nmessage = \"hi\"\nratio = 1.5\n");
    CHECK(has(e, "ratio = 1.5 is out of range [0, 1]"));
    e = f.validation_error("[[stages]]\nkind = \"echo\"\nmessage = \"hi\"\nmode = \"fsat\"\n");
    CHECK(has(e, "mode = \"fsat\" is not one of \"fast\", \"slow\"; did you mean 'fast'?"));
    e = f.validation_error("[[stages]]\nkind = \"echo\"\nmessage = \"hi\"\nfail = 1\n");
    CHECK(has(e, "fail: expected boolean, got integer 1"));
}

TEST_CASE("missing required keys - missing kind and missing stages") {
    PipelineFixture f;
    CHECK(has(f.validation_error("[[stages]]\nkind = \"echo\"\n"),
              "stages[0] (echo): missing required key 'message' (string: what to echo)"));
    CHECK(has(f.validation_error("[[stages]]\nmessage = \"hi\"\n"), "stages[0]: missing required key 'kind'"));
    CHECK(has(f.validation_error("[pipeline]\nname = \"x\"\n"), "the pipeline has no stages"));
}

TEST_CASE("an unknown stage kind names the kinds known and the paths searched") {
    PipelineFixture f;
    std::string e = f.validation_error("[[stages]]\nkind = \"ecoh\"\nmessage = \"hi\"\n");
    CHECK(has(e, "p.toml:4:8: stages[0] (ecoh): no plugin provides stage kind 'ecoh'; did you mean 'echo'?"));
    CHECK(has(e, "searched: "));
    CHECK(has(e, "/echo"));
}

TEST_CASE("required plugins: missing - bad range and version not satisfied") {
    PipelineFixture f;
    std::string body = "[[stages]]\nkind = \"echo\"\nmessage = \"hi\"\n";
    std::string e = f.validation_error("[plugins.require]\nnope = \"*\"\n" + body);
    CHECK(has(e, "needs plugin 'nope', which is not on the plugin search path (searched:"));
    e = f.validation_error("[plugins.require]\necho = \">=2.0\"\n" + body);
    CHECK(has(e, "needs plugin 'echo' >=2.0, but found echo 1.2.0"));
    e = f.validation_error("[plugins.require]\necho = \"two\"\n" + body);
    CHECK(has(e, "require.echo = \"two\" is not a version range"));
    CHECK(f.validation_error("[plugins.require]\necho = \"^1.1\"\n" + body) == "");
}

TEST_CASE("device preferences name unknown backends and bad fallback policies") {
    PipelineFixture f;
    std::string body = "[[stages]]\nkind = \"echo\"\nmessage = \"hi\"\n";
    std::string e = f.validation_error("[devices]\nprefer = [\"cpux\"]\nfallback = \"sometimes\"\n" + body);
    CHECK(has(e, "no plugin provides device backend 'cpux'; did you mean 'cpu'?"));
    CHECK(has(e, "fallback = \"sometimes\" is not one of \"error\", \"warn\", \"allow\""));
}

TEST_CASE("every problem is reported at once - one per line") {
    PipelineFixture f;
    std::string e = f.validation_error("[[stages]]\nkind = \"echo\"\ncount = 0\nmod = \"fast\"\n");
    CHECK(has(e, "unknown key 'mod'"));
    CHECK(has(e, "count = 0 is out of range"));
    CHECK(has(e, "missing required key 'message'"));
    CHECK(std::count(e.begin(), e.end(), '\n') == 2);
}

TEST_CASE("TOML syntax errors name line and column") {
    PipelineFixture f;
    std::string e = f.validation_error("[[stages]\nkind = \"echo\"\n");
    CHECK(has(e, "p.toml:3:10:"));
    CHECK(has(e, "TOML syntax error"));
}

TEST_CASE("--set overrides any key - with the same checks - by index or stage name") {
    PipelineFixture f;
    std::string body = "[[stages]]\nkind = \"echo\"\nname = \"greet\"\nmessage = \"hi\"\n";
    CHECK(f.validation_error(body, {"stages.0.count=3"}) == "");
    CHECK(f.validation_error(body, {"stages[0].count=3"}) == "");
    CHECK(f.validation_error(body, {"stages.greet.mode=slow"}) == "");
    CHECK(has(f.validation_error(body, {"stages.0.count=five"}),
              "--set stages.0.count=five: stages[0] (echo).count: expected integer, got string 'five'"));
    CHECK(has(f.validation_error(body, {"stages.0.cuont=3"}), "--set stages.0.cuont=3: stages[0] (echo): unknown key 'cuont'; did you mean 'count'?"));
    CHECK(has(f.validation_error(body, {"stages.0.count=30"}), "count = 30 is out of range [1, 10]"));
    CHECK(has(f.validation_error(body, {"stages.3.count=1"}), "is an array of 1 elements"));
    CHECK(has(f.validation_error(body, {"nonsense"}), "--set nonsense: expected key.path=value"));
    CHECK(has(f.validation_error(body, {"stages.0.kind=ecoh"}), "no plugin provides stage kind 'ecoh'"));
}

TEST_CASE("a stage's own validate() runs before anything and may use its whole context") {
    PipelineFixture f;
    std::string e = f.validation_error("[[stages]]\nkind = \"echo\"\nmessage = \"invalid!\"\n");
    CHECK(has(e, "p.toml:3:1: stages[0] (echo): message may not be 'invalid!' (the echo stage's own check)"));
    CHECK(f.validation_error("[[stages]]\nkind = \"echo\"\nmessage = \"fine\"\n") == "");
}

TEST_CASE("a missing pipeline file is NOT_FOUND") {
    dsk::Kernel kernel;
    dsk::RunOptions options;
    options.pipeline_path = "/nonexistent/pipeline.toml";
    try {
        kernel.validate(options);
        FAIL("expected an error");
    } catch (const dsk::Error& e) {
        CHECK(e.code() == DSK_NOT_FOUND);
        CHECK(has(e.what(), "/nonexistent/pipeline.toml: no such pipeline file"));
    }
}
