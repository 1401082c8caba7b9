#include "study_report.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <dsk/dsk_file.hpp>

#include "trial_process.h"

namespace fs = std::filesystem;

namespace dsk::hpo {

namespace {

std::string fixed(double v, int digits = 4) {
    if (!std::isfinite(v)) return "-";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

std::string csv_field(const std::string& text) {
    if (text.find_first_of(",\"\n") == std::string::npos) return text;
    std::string out = "\"";
    for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

void write_text(const std::string& path, const std::string& text) { write_file_atomically(path, {{text.data(), text.size()}}); }

std::string param_text(const TrialRecord& t, const search::Param& p) {
    const auto it = t.params.find(p.name);
    return it == t.params.end() ? "" : it->second.text();
}

}  // namespace

std::string trial_dir_name(uint64_t id) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "trials/%04llu", static_cast<unsigned long long>(id));
    return buf;
}

namespace {

// The complete record with the best objective (a trial or a finalist), or null.
template <class Record>
const Record* best_complete(const std::vector<Record>& records, bool maximize) {
    const Record* best = nullptr;
    for (const Record& r : records) {
        if (r.state != "complete" || !std::isfinite(r.objective)) continue;
        if (!best || (maximize ? r.objective > best->objective : r.objective < best->objective)) best = &r;
    }
    return best;
}

}  // namespace

const TrialRecord* best_trial(const std::vector<TrialRecord>& trials, bool maximize) {
    return best_complete(trials, maximize);
}

const FinalistRecord* best_finalist(const std::vector<FinalistRecord>& finalists, bool maximize) {
    return best_complete(finalists, maximize);
}

std::string finalists_table(const std::vector<FinalistRecord>& finalists, const StudySettings& s) {
    const FinalistRecord* best = best_finalist(finalists, s.maximize);
    std::string out = "trial  state     search_obj  finalist_obj  wall_s   (" + s.objective + " in the search, and retrained as a finalist)\n";
    for (const FinalistRecord& f : finalists) {
        char line[128];
        std::snprintf(line, sizeof line, "%5llu  %-8s  %10s  %12s  %6.1f", static_cast<unsigned long long>(f.trial), f.state.c_str(),
                      fixed(f.search_objective).c_str(), fixed(f.objective).c_str(), f.wall_s);
        out += line + std::string(&f == best ? "  <- exported" : "") + (f.error.empty() ? "" : "  (" + f.error + ")") + "\n";
    }
    return out;
}

void write_finalists_json(const std::string& path, const std::vector<FinalistRecord>& finalists) {
    auto number = [](double v) { return std::isfinite(v) ? search::Value::float_literal(v) : std::string("null"); };
    std::string text = "[\n";
    for (size_t k = 0; k < finalists.size(); ++k) {
        const FinalistRecord& f = finalists[k];
        text += "  {\"trial\": " + std::to_string(f.trial) + ", \"state\": " + json_quote(f.state) + ", \"search_objective\": " +
                number(f.search_objective) + ", \"objective\": " + number(f.objective) + ", \"wall_s\": " + fixed(f.wall_s, 3) +
                ", \"error\": " + json_quote(f.error) + "}" + (k + 1 < finalists.size() ? ",\n" : "\n");
    }
    write_text(path, text + "]\n");
}

std::string trials_table(const std::vector<TrialRecord>& trials, const search::Space& space) {
    std::string out = "trial  state     objective  steps  wall_s  parameters\n";
    for (const TrialRecord& t : trials) {
        char head[96];
        std::snprintf(head, sizeof head, "%5llu  %-8s  %9s  %5lld  %6.1f  ", static_cast<unsigned long long>(t.id), t.state.c_str(),
                      fixed(t.objective).c_str(), static_cast<long long>(t.steps), t.wall_s);
        out += head + describe(space, t.params) + (t.error.empty() ? "" : "  (" + t.error + ")") + "\n";
    }
    return out;
}

void write_trials_csv(const std::string& path, const std::vector<TrialRecord>& trials, const search::Space& space) {
    std::string text = "trial,state,objective,steps,wall_s";
    for (const search::Param& p : space.params()) text += "," + csv_field(p.name);
    text += ",error\n";
    for (const TrialRecord& t : trials) {
        text += std::to_string(t.id) + "," + t.state + "," + (std::isfinite(t.objective) ? search::Value::float_literal(t.objective) : "") +
                "," + std::to_string(t.steps) + "," + fixed(t.wall_s, 2);
        for (const search::Param& p : space.params()) text += "," + csv_field(param_text(t, p));
        text += "," + csv_field(t.error) + "\n";
    }
    write_text(path, text);
}

void write_trials_json(const std::string& path, const std::vector<TrialRecord>& trials, const search::Space& space) {
    std::string text = "[\n";
    for (size_t k = 0; k < trials.size(); ++k) {
        const TrialRecord& t = trials[k];
        text += "  {\"trial\": " + std::to_string(t.id) + ", \"state\": " + json_quote(t.state) + ", \"objective\": " +
                (std::isfinite(t.objective) ? search::Value::float_literal(t.objective) : "null") + ", \"steps\": " +
                std::to_string(t.steps) + ", \"wall_s\": " + fixed(t.wall_s, 3) + ", \"params\": {";
        bool first = true;
        for (const search::Param& p : space.params()) {
            const auto it = t.params.find(p.name);
            if (it == t.params.end()) continue;
            text += (first ? "" : ", ") + json_quote(p.name) + ": " + it->second.literal();
            first = false;
        }
        text += "}, \"enqueued\": " + std::string(t.enqueued ? "true" : "false") + ", \"error\": " + json_quote(t.error) + "}" +
                (k + 1 < trials.size() ? ",\n" : "\n");
    }
    write_text(path, text + "]\n");
}

void write_best_curve_html(const std::string& path, const std::vector<TrialRecord>& trials, const StudySettings& s) {
    // Points: every complete trial's objective; the line: the best so far, by trial number.
    std::vector<std::pair<double, double>> points, curve;
    double best = NAN;
    for (const TrialRecord& t : trials) {
        if (t.state != "complete" || !std::isfinite(t.objective)) continue;
        points.emplace_back(static_cast<double>(t.id), t.objective);
        if (std::isnan(best) || (s.maximize ? t.objective > best : t.objective < best)) best = t.objective;
        curve.emplace_back(static_cast<double>(t.id), best);
    }
    const double w = 640, h = 360, left = 70, right = 20, top = 20, bottom = 50;
    double x_max = 1, y_min = 0, y_max = 1;
    if (!points.empty()) {
        x_max = std::max(1.0, static_cast<double>(trials.back().id));
        y_min = y_max = points.front().second;
        for (const auto& [x, y] : points) y_min = std::min(y_min, y), y_max = std::max(y_max, y);
        if (y_max - y_min < 1e-12) y_min -= 0.5, y_max += 0.5;
    }
    auto sx = [&](double x) { return left + (w - left - right) * x / x_max; };
    auto sy = [&](double y) { return top + (h - top - bottom) * (1 - (y - y_min) / (y_max - y_min)); };
    std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fixed(w, 0) + "\" height=\"" + fixed(h, 0) + "\">\n";
    svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    svg += "<line x1=\"" + fixed(left, 1) + "\" y1=\"" + fixed(h - bottom, 1) + "\" x2=\"" + fixed(w - right, 1) + "\" y2=\"" +
           fixed(h - bottom, 1) + "\" stroke=\"black\"/>\n";
    svg += "<line x1=\"" + fixed(left, 1) + "\" y1=\"" + fixed(top, 1) + "\" x2=\"" + fixed(left, 1) + "\" y2=\"" + fixed(h - bottom, 1) +
           "\" stroke=\"black\"/>\n";
    for (int k = 0; k <= 4; ++k) {
        const double y = y_min + (y_max - y_min) * k / 4;
        svg += "<text x=\"" + fixed(left - 6, 1) + "\" y=\"" + fixed(sy(y) + 4, 1) + "\" font-size=\"11\" text-anchor=\"end\">" +
               fixed(y, 4) + "</text>\n";
    }
    svg += "<text x=\"" + fixed((left + w - right) / 2, 1) + "\" y=\"" + fixed(h - 12, 1) +
           "\" font-size=\"12\" text-anchor=\"middle\">trial</text>\n";
    svg += "<text x=\"" + fixed(left, 1) + "\" y=\"" + fixed(h - bottom + 16, 1) + "\" font-size=\"11\">0</text>\n";
    svg += "<text x=\"" + fixed(w - right, 1) + "\" y=\"" + fixed(h - bottom + 16, 1) + "\" font-size=\"11\" text-anchor=\"end\">" +
           fixed(x_max, 0) + "</text>\n";
    for (const auto& [x, y] : points)
        svg += "<circle cx=\"" + fixed(sx(x), 1) + "\" cy=\"" + fixed(sy(y), 1) + "\" r=\"3\" fill=\"#999\"/>\n";
    if (!curve.empty()) {
        std::string d = "M" + fixed(sx(curve.front().first), 1) + " " + fixed(sy(curve.front().second), 1);
        for (size_t k = 1; k < curve.size(); ++k)
            d += " H" + fixed(sx(curve[k].first), 1) + " V" + fixed(sy(curve[k].second), 1);
        d += " H" + fixed(sx(x_max), 1);
        svg += "<path d=\"" + d + "\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n";
    }
    svg += "</svg>\n";
    const std::string title = "hpo " + s.stage_name + ": best " + s.objective + " so far";
    std::string html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + title + "</title></head>\n<body>\n<h2>" + title +
                       "</h2>\n<p>" + std::to_string(points.size()) + " complete trial(s) of " + std::to_string(trials.size()) +
                       "; grey: each trial's " + s.objective + ", blue: the best so far (" + (s.maximize ? "maximised" : "minimised") +
                       ").</p>\n" + svg + "</body></html>\n";
    write_text(path, html);
}

namespace {

std::string read_all(const fs::path& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The trial's resolved config with the stage's `retrain` settings applied by the worker, as
// `dsk validate --print-config` resolves them (the same --set semantics as every trial's).
std::string with_retrain_settings(const fs::path& config, const StudySettings& s) {
    std::vector<std::string> argv{s.worker};
    for (const std::string& d : s.plugin_dirs) argv.insert(argv.end(), {"--plugin-path", d});
    argv.insert(argv.end(), {"validate", config.string()});
    for (const std::string& r : s.retrain) argv.insert(argv.end(), {"--set", r});
    argv.push_back("--print-config");
    const fs::path log = fs::path(s.dir) / "retrain.log", out = fs::path(s.dir) / "retrain.toml.tmp";
    fs::remove(log);
    TrialProcess process(argv, log.string(), {}, out.string());
    process.wait();
    std::string text = read_all(out);
    fs::remove(out);
    if (process.exit_code() != 0 || text.empty())
        throw Error(DSK_INVALID_ARGUMENT, "stage '" + s.stage_name + "': the retrain settings do not apply to the best trial's pipeline (" +
                                              config.string() + "): " + read_all(log));
    return text;
}

}  // namespace

void export_best_pipeline(const std::string& path, const TrialRecord& best, const StudySettings& s, const search::Space& space,
                          const FinalistRecord* chosen) {
    const fs::path config = fs::path(s.dir) / trial_dir_name(best.id) / "config.toml";
    if (!fs::is_regular_file(config)) throw Error(DSK_NOT_FOUND, "cannot export the best trial: " + config.string() + " is missing");
    const std::string resolved = s.retrain.empty() ? read_all(config) : with_retrain_settings(config, s);
    std::string header = "# The best trial of stage '" + s.stage_name + "' (trial " + std::to_string(best.id) + ", " + s.objective +
                         " = " + search::Value::float_literal(best.objective) + "), exported as a standalone pipeline:\n"
                         "#   dsk run " + path + "\n# retrains it from scratch";
    if (!s.retrain.empty()) {
        header += " with the stage's retrain settings (";
        for (size_t k = 0; k < s.retrain.size(); ++k) header += (k ? ", " : "") + s.retrain[k];
        header += "; the trial's " + s.objective + " was measured with the search's settings)";
    }
    if (chosen)
        header += ".\n# Chosen among the finalists (the best trials, retrained with the retrain settings and the finalist "
                  "overrides): " + s.objective + " = " + search::Value::float_literal(chosen->objective) + " as a finalist (" +
                  s.dir + "/finalists.json)";
    header += ". Base pipeline: " + s.base + "\n# Parameters:";
    for (const search::Param& p : space.params()) {
        const auto it = best.params.find(p.name);
        if (it != best.params.end()) header += " " + p.key + "=" + it->second.literal();
    }
    write_text(path, header + "\n\n" + resolved);
}

}  // namespace dsk::hpo
