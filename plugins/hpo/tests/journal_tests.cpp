// The study journal: appended lines read back in order; a last line cut short by a crash is
// dropped with a reason; damage elsewhere is DATA_LOSS naming the line.
#include <doctest/doctest.h>

#include <fstream>

#include "journal.h"
#include "temp_dir.h"

TEST_CASE("the journal reads back what was appended and drops a torn last line") {
    test_support::TempDir temp{"dsk-journal-tests"};
    const std::string path = temp.file("journal.jsonl");
    {
        dsk::hpo::Journal journal(path);
        journal.append(R"({"event": "suggest", "trial": 0, "params": {"lr": 0.01}})");
        journal.append(R"({"event": "end", "trial": 0, "state": "complete", "objective": 0.9})");
    }
    std::ofstream(path, std::ios::app) << R"({"event": "suggest", "tri)";  // power lost mid-line
    std::string dropped;
    const auto events = dsk::hpo::Journal::read(path, &dropped);
    REQUIRE(events.size() == 2);
    CHECK(events[0].find("params")->find("lr")->number == 0.01);
    CHECK(events[1].find("state")->string == "complete");
    CHECK(dropped.find("journal.jsonl:3") != std::string::npos);
}

TEST_CASE("a damaged line inside the journal is DATA_LOSS naming it") {
    test_support::TempDir temp{"dsk-journal-tests"};
    const std::string path = temp.file("journal.jsonl");
    std::ofstream(path) << "{\"event\": \"study\"}\n{oops}\n{\"event\": \"end\"}\n";
    try {
        dsk::hpo::Journal::read(path, nullptr);
        FAIL("must refuse");
    } catch (const dsk::Error& e) {
        CHECK(e.code() == DSK_DATA_LOSS);
        CHECK(std::string(e.what()).find("journal.jsonl:2") != std::string::npos);
        CHECK(std::string(e.what()).find("move it away") != std::string::npos);
    }
}
