// dsk_search.hpp - search spaces and search strategies (ask/tell) in C++ over dsk_search_iface.
//
// The one place that reads the TOML form of a search space (docs/automl.md), samples it, and
// writes assignments. Strategies (random, grid, tpe, evolution), schedulers (asha, median) and the
// hpo stage all use it, and so can a third-party strategy built against the installed SDK:
//
//     class MyStrategy : public dsk::search::Search {
//     public:
//         MyStrategy(dsk::search::Space space, const dsk::Config& options, uint64_t seed)
//             : Search(std::move(space)), seed_(seed) {}
//     protected:
//         dsk::search::Assignment propose(uint64_t trial) override {
//             dsk::search::Random random(dsk::mix(seed_, trial));
//             return space().sample(random);  // or something cleverer, from trials()
//         }
//     private:
//         uint64_t seed_;
//     };
//     static const dsk_search_iface mine = dsk::search::make_iface<MyStrategy>(
//         "mine", "My strategy", nullptr, 0);   // then reg.search(mine) in init
//
// Trials the strategy did not suggest (a user's enqueued configurations; add_trial, ABI 1.2)
// arrive through Search::add and are in trials() like its own, so propose() learns from them;
// override on_add() only for bookkeeping of your own (grid strikes the point off its list).
//
// Values: every value a strategy receives through report/complete is to be MINIMISED; a stage
// that maximises (accuracy) negates before it calls (the hpo stage does). Failed trials carry
// NaN. Randomness should be drawn from (seed, trial id) and the observed history only, so that a
// study replayed call for call (resume from a journal) suggests the same assignments again.
#ifndef DSK_SEARCH_HPP_
#define DSK_SEARCH_HPP_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dsk/dsk_json.hpp"
#include "dsk/dsk_plugin.hpp"
#include "dsk/dsk_random.hpp"

namespace dsk::search {

//==============================================================================================
// Random numbers (SplitMix64 underneath, like every draw in dsk)
//==============================================================================================

class Random {
public:
    explicit Random(uint64_t seed) : state_(seed) {}
    uint64_t next() { return splitmix64(state_); }
    // Uniform in [0, 1).
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    // Uniform integer in [0, n); n > 0.
    size_t below(size_t n) { return static_cast<size_t>(next() % n); }
    // Standard normal (Box-Muller).
    double normal() {
        const double u1 = 1.0 - uniform();  // (0, 1]
        const double u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }

private:
    uint64_t state_;
};

//==============================================================================================
// Values, parameters, spaces
//==============================================================================================

// One value of a parameter: a TOML scalar, or an array of numbers (a categorical choice such as
// `hidden = [256, 128]`).
struct Value {
    dsk_value_type type = DSK_VALUE_MISSING;  // BOOL, INT, FLOAT, STRING or ARRAY
    bool b = false;
    int64_t i = 0;
    double f = 0;
    std::string s;
    std::vector<double> numbers;  // ARRAY
    bool integers = false;        // ARRAY: every element is a TOML integer

    static Value of_int(int64_t v) { Value x; x.type = DSK_VALUE_INT; x.i = v; return x; }
    static Value of_float(double v) { Value x; x.type = DSK_VALUE_FLOAT; x.f = v; return x; }

    // The value as a number (FLOAT, INT, BOOL); NaN for others.
    double number() const {
        switch (type) {
            case DSK_VALUE_FLOAT: return f;
            case DSK_VALUE_INT: return static_cast<double>(i);
            case DSK_VALUE_BOOL: return b ? 1.0 : 0.0;
            default: return std::numeric_limits<double>::quiet_NaN();
        }
    }

    bool operator==(const Value& o) const {
        if (type == DSK_VALUE_INT && o.type == DSK_VALUE_FLOAT) return static_cast<double>(i) == o.f;
        if (type == DSK_VALUE_FLOAT && o.type == DSK_VALUE_INT) return f == static_cast<double>(o.i);
        if (type != o.type) return false;
        switch (type) {
            case DSK_VALUE_BOOL: return b == o.b;
            case DSK_VALUE_INT: return i == o.i;
            case DSK_VALUE_FLOAT: return f == o.f;
            case DSK_VALUE_STRING: return s == o.s;
            case DSK_VALUE_ARRAY: return numbers == o.numbers;
            default: return true;
        }
    }
    bool operator!=(const Value& o) const { return !(*this == o); }

    // A TOML literal of the value, as `--set key=<literal>` takes it: 0.001, 64, "sgd", true,
    // [256, 128]. Floats keep 17 significant digits and always read back as floats.
    std::string literal() const {
        switch (type) {
            case DSK_VALUE_BOOL: return b ? "true" : "false";
            case DSK_VALUE_INT: return std::to_string(i);
            case DSK_VALUE_FLOAT: return float_literal(f);
            case DSK_VALUE_STRING: return json_quote(s);  // a valid TOML basic string
            case DSK_VALUE_ARRAY: {
                std::string out = "[";
                for (size_t k = 0; k < numbers.size(); ++k) {
                    if (k) out += ", ";
                    out += integers ? std::to_string(static_cast<int64_t>(numbers[k])) : float_literal(numbers[k]);
                }
                return out + "]";
            }
            default: return "\"\"";
        }
    }
    // For tables and logs: strings without quotes.
    std::string text() const { return type == DSK_VALUE_STRING ? s : literal(); }

    static std::string float_literal(double v) {
        if (std::isnan(v)) return "nan";
        if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.17g", v);
        std::string out = buf;
        // The shortest form that reads back exactly is nicer to look at (0.001, not 0.00100...02).
        for (int digits = 6; digits < 17; ++digits) {
            std::snprintf(buf, sizeof buf, "%.*g", digits, v);
            if (std::strtod(buf, nullptr) == v) {
                out = buf;
                break;
            }
        }
        if (out.find_first_of(".eE") == std::string::npos) out += ".0";
        return out;
    }
};

enum class ParamType { Float, Int, Categorical };

inline const char* type_name(ParamType t) {
    return t == ParamType::Float ? "float" : t == ParamType::Int ? "int" : "categorical";
}

// One entry of the space.
struct Param {
    std::string name;
    std::string key;  // the pipeline key the hpo stage sets (`key = ...`; default: the name)
    ParamType type = ParamType::Float;
    double low = 0, high = 0;  // Float, Int
    bool log = false;
    std::vector<Value> choices;  // Categorical
    // Conditional: active only when parameter `parent` is active and has one of `parent_values`.
    std::string parent;
    std::vector<Value> parent_values;

    bool numeric() const { return type != ParamType::Categorical; }

    // Index of `v` in choices, or choices.size() when it is not one of them.
    size_t choice_index(const Value& v) const {
        for (size_t k = 0; k < choices.size(); ++k)
            if (choices[k] == v) return k;
        return choices.size();
    }

    // Numeric parameters on [0, 1] (log scale for `log`; integers widened by half a step so that
    // every integer gets the same share): what model-based strategies work in.
    double to_unit(double x) const {
        const double lo = type == ParamType::Int ? low - 0.5 : low;
        const double hi = type == ParamType::Int ? high + 0.5 : high;
        if (hi <= lo) return 0.5;
        const double u = log ? (std::log(x) - std::log(lo)) / (std::log(hi) - std::log(lo)) : (x - lo) / (hi - lo);
        return std::clamp(u, 0.0, 1.0);
    }
    Value from_unit(double u) const {
        u = std::clamp(u, 0.0, 1.0);
        const double lo = type == ParamType::Int ? low - 0.5 : low;
        const double hi = type == ParamType::Int ? high + 0.5 : high;
        double x = log ? std::exp(std::log(lo) + u * (std::log(hi) - std::log(lo))) : lo + u * (hi - lo);
        if (type == ParamType::Int) {
            return Value::of_int(static_cast<int64_t>(std::clamp(std::round(x), low, high)));
        }
        return Value::of_float(std::clamp(x, low, high));
    }
};

// An assignment: parameter name -> value, holding exactly the active parameters.
using Assignment = std::map<std::string, Value>;

// "lr=0.001 optimizer=sgd" in the space's order (for logs).
class Space;
std::string describe(const Space& space, const Assignment& a);

class Space {
public:
    // Reads the space table (docs/automl.md): each key is a parameter name whose value is a table
    // { type = "float" | "int" | "categorical", low, high, log, choices, key, condition }.
    // Throws dsk::Error(INVALID_ARGUMENT) naming the entry, the key and what would fix it.
    static Space parse(const Config& table) {
        Space space;
        std::vector<Param> unordered;
        for (const std::string& name : table.keys()) unordered.push_back(parse_param(table, name));
        if (unordered.empty())
            throw Error(DSK_INVALID_ARGUMENT,
                        "the search space is empty: declare at least one parameter, e.g. "
                        "lr = { type = \"float\", low = 1e-4, high = 1e-1, log = true }");
        // Parents before children (a stable topological order), checking every condition.
        std::set<std::string> placed;
        while (space.params_.size() < unordered.size()) {
            bool progress = false;
            for (const Param& p : unordered) {
                if (placed.count(p.name) || (!p.parent.empty() && !placed.count(p.parent))) continue;
                space.params_.push_back(p);
                placed.insert(p.name);
                progress = true;
            }
            if (!progress) {
                for (const Param& p : unordered) {
                    if (placed.count(p.name)) continue;
                    bool known = false;
                    for (const Param& q : unordered) known = known || q.name == p.parent;
                    if (!known)
                        throw Error(DSK_INVALID_ARGUMENT, "search space '" + p.name + "': condition names '" + p.parent +
                                                              "', which is not a parameter of the space");
                }
                throw Error(DSK_INVALID_ARGUMENT, "search space: the conditions form a cycle (a parameter depends on itself)");
            }
        }
        for (Param& p : space.params_) {
            if (p.parent.empty()) continue;
            const Param& parent = *space.find(p.parent);
            // `{ depth = [2, 3] }` lists values of a scalar parent; only a parent whose choices are
            // arrays takes an array of numbers as one value.
            const bool array_choices = parent.type == ParamType::Categorical && parent.choices.front().type == DSK_VALUE_ARRAY;
            if (!array_choices && p.parent_values.size() == 1 && p.parent_values.front().type == DSK_VALUE_ARRAY) {
                const Value list = p.parent_values.front();
                p.parent_values.clear();
                for (double x : list.numbers)
                    p.parent_values.push_back(list.integers ? Value::of_int(static_cast<int64_t>(x)) : Value::of_float(x));
            }
            for (const Value& v : p.parent_values) {
                const bool ok = parent.type == ParamType::Categorical
                                    ? parent.choice_index(v) < parent.choices.size()
                                    : (v.type == DSK_VALUE_INT || v.type == DSK_VALUE_FLOAT) && v.number() >= parent.low &&
                                          v.number() <= parent.high;
                if (!ok)
                    throw Error(DSK_INVALID_ARGUMENT, "search space '" + p.name + "': condition value " + v.literal() +
                                                          " can never be taken by '" + parent.name + "'");
            }
        }
        return space;
    }

    const std::vector<Param>& params() const { return params_; }
    const Param* find(const std::string& name) const {
        for (const Param& p : params_)
            if (p.name == name) return &p;
        return nullptr;
    }

    // Whether `p` is active given the values of the parameters before it in `a`.
    bool active(const Param& p, const Assignment& a) const {
        if (p.parent.empty()) return true;
        const auto it = a.find(p.parent);
        if (it == a.end()) return false;
        for (const Value& v : p.parent_values)
            if (v == it->second) return true;
        return false;
    }

    // A value of `p` drawn uniformly (log-uniformly for `log`).
    Value sample(const Param& p, Random& random) const {
        if (p.type == ParamType::Categorical) return p.choices[random.below(p.choices.size())];
        return p.from_unit(random.uniform());
    }
    // A whole assignment: every active parameter sampled.
    Assignment sample(Random& random) const {
        Assignment a;
        for (const Param& p : params_)
            if (active(p, a)) a[p.name] = sample(p, random);
        return a;
    }
    // Drops parameters that are not active any more and samples those that became active (after
    // a strategy changed a parent).
    void complete_assignment(Assignment& a, Random& random) const {
        Assignment fixed;
        for (const Param& p : params_) {
            if (!active(p, fixed)) continue;
            const auto it = a.find(p.name);
            fixed[p.name] = it != a.end() ? it->second : sample(p, random);
        }
        a = std::move(fixed);
    }

    // Writes the active parameters into an assignment table (dsk_search_iface::suggest), one key
    // per parameter name.
    void write(const Assignment& a, Table out) const {
        for (const Param& p : params_) {
            const auto it = a.find(p.name);
            if (it == a.end()) continue;
            const Value& v = it->second;
            switch (v.type) {
                case DSK_VALUE_BOOL: out.set(p.name, v.b); break;
                case DSK_VALUE_INT: out.set(p.name, v.i); break;
                case DSK_VALUE_FLOAT: out.set(p.name, v.f); break;
                case DSK_VALUE_STRING: out.set(p.name, v.s); break;
                case DSK_VALUE_ARRAY:
                    if (v.integers) {
                        std::vector<int64_t> ints(v.numbers.begin(), v.numbers.end());
                        out.set(p.name, ints);
                    } else {
                        out.set(p.name, v.numbers);
                    }
                    break;
                default: break;
            }
        }
    }
    // Reads an assignment table back (what a strategy wrote), checking it against the space:
    // every active parameter present and valid, nothing else. `what` empty: a strategy wrote it,
    // and a mistake is INTERNAL; otherwise it names who gave it ("enqueue[2]") in an
    // INVALID_ARGUMENT error.
    Assignment read(const Config& in, const std::string& what = std::string()) const {
        Assignment a;
        for (const std::string& key : in.keys()) {
            if (!find(key)) {
                std::string names;
                for (const Param& p : params_) names += (names.empty() ? "" : ", ") + p.name;
                throw Error(what.empty() ? DSK_INTERNAL : DSK_INVALID_ARGUMENT,
                            (what.empty() ? std::string("the search strategy") : what) + " sets '" + key +
                                "', which is not in the space (" + names + ")");
            }
            a[key] = read_value(in, key, (what.empty() ? "the search strategy's assignment" : what) + " '" + key + "'");
        }
        check_assignment(a, what);
        return a;
    }

    // Checks an assignment against the space (every active parameter present and valid, nothing
    // inactive) and gives each value its declared type. Errors as for read().
    void check_assignment(Assignment& a, const std::string& what = std::string()) const {
        const dsk_status_code code = what.empty() ? DSK_INTERNAL : DSK_INVALID_ARGUMENT;
        const std::string who = what.empty() ? "the search strategy" : what;
        Assignment checked;
        for (const Param& p : params_) {
            const auto it = a.find(p.name);
            if (!active(p, checked)) {
                if (it != a.end())
                    throw Error(code, who + " sets '" + p.name + "', which is not active (" + p.parent + " = " +
                                          (checked.count(p.parent) ? checked.at(p.parent).text() : "unset") + ")");
                continue;
            }
            if (it == a.end()) throw Error(code, who + " did not set the active parameter '" + p.name + "'");
            Value v = it->second;
            try {
                check_value(p, v);
            } catch (const Error& e) {
                throw Error(code, who + ": " + e.what());
            }
            checked[p.name] = std::move(v);
        }
        for (const auto& [name, value] : a)
            if (!find(name)) throw Error(code, who + " sets '" + name + "', which is not in the space");
        a = std::move(checked);
    }

    // Throws INVALID_ARGUMENT when `v` is not a value `p` can take (for an assignment that comes
    // back from a strategy or a journal).
    static void check_value(const Param& p, Value& v) {
        if (p.type == ParamType::Categorical) {
            if (p.choice_index(v) >= p.choices.size())
                throw Error(DSK_INVALID_ARGUMENT, "'" + p.name + "' = " + v.literal() + " is not one of its choices");
            v = p.choices[p.choice_index(v)];  // the declared type (1 for 1.0)
            return;
        }
        const double x = v.number();
        if (!(x >= p.low && x <= p.high) || (p.type == ParamType::Int && x != std::round(x)))
            throw Error(DSK_INVALID_ARGUMENT, "'" + p.name + "' = " + v.literal() + " is outside [" +
                                                  Value::float_literal(p.low) + ", " + Value::float_literal(p.high) + "]");
        v = p.type == ParamType::Int ? Value::of_int(static_cast<int64_t>(x)) : Value::of_float(x);
    }

    // A scalar or an array of numbers at `key` of `c`; `what` names it in errors.
    static Value read_value(const Config& c, const std::string& key, const std::string& what) {
        Value v;
        v.type = c.type(key);
        switch (v.type) {
            case DSK_VALUE_BOOL: v.b = c.get<bool>(key); break;
            case DSK_VALUE_INT: v.i = c.get<int64_t>(key); break;
            case DSK_VALUE_FLOAT: v.f = c.get<double>(key); break;
            case DSK_VALUE_STRING: v.s = c.get<std::string>(key); break;
            case DSK_VALUE_ARRAY: {
                v.integers = true;
                const size_t n = c.size(key);
                for (size_t k = 0; k < n; ++k) {
                    const std::string element = key + "." + std::to_string(k);
                    const dsk_value_type t = c.type(element);
                    if (t != DSK_VALUE_INT && t != DSK_VALUE_FLOAT)
                        throw Error(DSK_INVALID_ARGUMENT, what + ": an array value must hold numbers only (like [256, 128])");
                    v.integers = v.integers && t == DSK_VALUE_INT;
                    v.numbers.push_back(t == DSK_VALUE_INT ? static_cast<double>(c.get<int64_t>(element)) : c.get<double>(element));
                }
                break;
            }
            default:
                throw Error(DSK_INVALID_ARGUMENT, what + ": expected a boolean, number, string or array of numbers");
        }
        return v;
    }

private:
    static Param parse_param(const Config& table, const std::string& name) {
        const std::string where = "search space '" + name + "'";
        if (name.empty() || name.find('.') != std::string::npos)
            throw Error(DSK_INVALID_ARGUMENT, where + ": a parameter name must be a plain word; put the pipeline path in key = \"...\"");
        if (table.type(name) != DSK_VALUE_TABLE)
            throw Error(DSK_INVALID_ARGUMENT, where + ": expected a table such as { type = \"float\", low = 1e-4, high = 0.1, log = true }");
        const Config e = table.section(name);
        static const char* const known[] = {"type", "key", "low", "high", "log", "choices", "condition"};
        for (const std::string& k : e.keys()) {
            if (std::find_if(std::begin(known), std::end(known), [&](const char* n) { return k == n; }) == std::end(known))
                throw Error(DSK_INVALID_ARGUMENT, where + ": unknown key '" + k +
                                                      "' (known: type, key, low, high, log, choices, condition)");
        }
        Param p;
        p.name = name;
        p.key = e.get_or("key", name.c_str());
        if (!e.has("type")) throw Error(DSK_INVALID_ARGUMENT, where + ": missing 'type' (\"float\", \"int\" or \"categorical\")");
        const std::string type = e.get<std::string>("type");
        if (type == "float") {
            p.type = ParamType::Float;
        } else if (type == "int") {
            p.type = ParamType::Int;
        } else if (type == "categorical") {
            p.type = ParamType::Categorical;
        } else {
            throw Error(DSK_INVALID_ARGUMENT, where + ": type = \"" + type + "\" is not one of \"float\", \"int\", \"categorical\"");
        }
        if (p.numeric()) {
            if (!e.has("low") || !e.has("high"))
                throw Error(DSK_INVALID_ARGUMENT, where + ": a " + type + " parameter needs low and high");
            if (e.has("choices")) throw Error(DSK_INVALID_ARGUMENT, where + ": choices belong to type = \"categorical\"");
            p.low = e.get<double>("low");
            p.high = e.get<double>("high");
            p.log = e.get_or("log", false);
            if (!(p.low < p.high))
                throw Error(DSK_INVALID_ARGUMENT, where + ": low (" + Value::float_literal(p.low) + ") must be below high (" +
                                                      Value::float_literal(p.high) + ")");
            if (p.type == ParamType::Int && (p.low != std::round(p.low) || p.high != std::round(p.high)))
                throw Error(DSK_INVALID_ARGUMENT, where + ": an int parameter needs integer low and high");
            if (p.log && p.low <= 0) throw Error(DSK_INVALID_ARGUMENT, where + ": log = true needs low > 0");
        } else {
            if (e.has("low") || e.has("high") || e.has("log"))
                throw Error(DSK_INVALID_ARGUMENT, where + ": low, high and log belong to float and int parameters");
            if (e.type("choices") != DSK_VALUE_ARRAY || e.size("choices") == 0)
                throw Error(DSK_INVALID_ARGUMENT, where + ": a categorical parameter needs choices = [...] (at least one)");
            for (size_t k = 0; k < e.size("choices"); ++k) {
                Value v = read_value(e, "choices." + std::to_string(k), where + " choice " + std::to_string(k));
                if (p.choice_index(v) < p.choices.size())
                    throw Error(DSK_INVALID_ARGUMENT, where + ": choice " + v.literal() + " is listed twice");
                p.choices.push_back(std::move(v));
            }
        }
        if (e.has("condition")) {
            if (e.type("condition") != DSK_VALUE_TABLE || e.size("condition") != 1)
                throw Error(DSK_INVALID_ARGUMENT, where + ": condition must name one parameter, e.g. condition = { optimizer = \"sgd\" } "
                                                          "or { optimizer = [\"sgd\", \"rmsprop\"] }");
            p.parent = e.key_at("condition", 0);
            if (p.parent == name) throw Error(DSK_INVALID_ARGUMENT, where + ": a condition cannot name the parameter itself");
            const std::string ck = "condition." + p.parent;
            if (e.type(ck) == DSK_VALUE_ARRAY && e.size(ck) > 0 && e.type(ck + ".0") != DSK_VALUE_INT &&
                e.type(ck + ".0") != DSK_VALUE_FLOAT) {
                for (size_t k = 0; k < e.size(ck); ++k)
                    p.parent_values.push_back(read_value(e, ck + "." + std::to_string(k), where + " condition"));
            } else {
                p.parent_values.push_back(read_value(e, ck, where + " condition"));
            }
        }
        return p;
    }

    std::vector<Param> params_;
};

inline std::string describe(const Space& space, const Assignment& a) {
    std::string out;
    for (const Param& p : space.params()) {
        const auto it = a.find(p.name);
        if (it == a.end()) continue;
        out += (out.empty() ? "" : " ") + p.name + "=" + it->second.text();
    }
    return out;
}

//==============================================================================================
// Strategies and schedulers in C++
//==============================================================================================

enum class TrialState { Pending, Complete, Pruned, Failed };

// What a search has seen of one trial.
struct Trial {
    uint64_t id = 0;
    Assignment params;  // empty for trials a scheduler did not suggest
    TrialState state = TrialState::Pending;
    double value = std::numeric_limits<double>::quiet_NaN();  // final value (minimised); NaN if failed
    std::map<int64_t, double> intermediate;                  // step -> value (minimised)
    uint64_t order = 0;  // when it finished (0, 1, 2, ... in completion order)
};

// Base of a strategy or scheduler. The thunks of make_iface() keep trials() up to date (suggested
// assignments, reports, completions) before calling the hooks below, so a subclass only decides.
class Search {
public:
    explicit Search(Space space) : space_(std::move(space)) {}
    virtual ~Search() = default;
    Search(const Search&) = delete;
    Search& operator=(const Search&) = delete;

    const Space& space() const { return space_; }
    const std::map<uint64_t, Trial>& trials() const { return trials_; }

    // Entry points (what the iface thunks call).
    Assignment suggest(uint64_t trial) {
        if (trials_.count(trial))
            throw Error(DSK_INVALID_ARGUMENT, "trial " + std::to_string(trial) + " was suggested before; trial ids must be new");
        Assignment a = propose(trial);
        Trial& t = trials_[trial];
        t.id = trial;
        t.params = a;
        return a;
    }
    // A trial someone else chose (an enqueued configuration, an earlier study's trial): from here
    // on it is one of trials() like a suggested one, so the strategy learns from its report and
    // complete. `a` must fit the space (Space::check_assignment).
    void add(uint64_t trial, Assignment a) {
        if (trials_.count(trial))
            throw Error(DSK_INVALID_ARGUMENT, "trial " + std::to_string(trial) + " is known already; an added trial needs a new id");
        space_.check_assignment(a, "trial " + std::to_string(trial));
        Trial& t = trials_[trial];
        t.id = trial;
        t.params = std::move(a);
        on_add(t);
    }
    void report(uint64_t trial, int64_t step, double value) {
        Trial& t = entry(trial);
        t.intermediate[step] = value;
        on_report(t, step, value);
    }
    bool should_prune(uint64_t trial) { return prune(entry(trial)); }
    void complete(uint64_t trial, TrialState state, double value) {
        Trial& t = entry(trial);
        if (t.state != TrialState::Pending)
            throw Error(DSK_INVALID_ARGUMENT, "trial " + std::to_string(trial) + " was completed before");
        t.state = state;
        t.value = state == TrialState::Failed ? std::numeric_limits<double>::quiet_NaN() : value;
        t.order = finished_++;
        on_complete(t);
    }

protected:
    // A new assignment for `trial`. Schedulers leave the default, which says what they are for.
    virtual Assignment propose(uint64_t trial) {
        (void)trial;
        throw Error(DSK_UNIMPLEMENTED, "this is an early-stopping scheduler: it prunes trials (report, should_prune) but does not "
                                       "propose them; pair it with a strategy (random, grid, tpe, evolution)");
    }
    // A trial was added (add): a strategy with its own bookkeeping (grid's list of points) updates it.
    virtual void on_add(const Trial& trial) { (void)trial; }
    virtual void on_report(const Trial& trial, int64_t step, double value) { (void)trial, (void)step, (void)value; }
    virtual bool prune(const Trial& trial) {
        (void)trial;
        return false;
    }
    virtual void on_complete(const Trial& trial) { (void)trial; }

private:
    Trial& entry(uint64_t trial) {
        Trial& t = trials_[trial];
        t.id = trial;
        return t;
    }

    Space space_;
    std::map<uint64_t, Trial> trials_;
    uint64_t finished_ = 0;
};

namespace detail {

template <class T>
struct SearchThunks {
    static Search& of(dsk_search* s) { return *reinterpret_cast<Search*>(s); }

    static dsk_status create(void*, const dsk_config* space, const dsk_config* options, uint64_t seed, dsk_search** out) {
        return guard([&] {
            *out = nullptr;
            if (space == nullptr) throw Error(DSK_INVALID_ARGUMENT, "no search space given");
            // A null `options` reads as an empty table (every option at its default).
            std::unique_ptr<Search> s = std::make_unique<T>(Space::parse(Config(space)), Config(options), seed);
            *out = reinterpret_cast<dsk_search*>(s.release());
        });
    }
    static dsk_status suggest(dsk_search* s, uint64_t trial, dsk_config* out) {
        return guard([&] {
            Search& search = of(s);
            search.space().write(search.suggest(trial), Table(out));
        });
    }
    static dsk_status report(dsk_search* s, uint64_t trial, int64_t step, double value) {
        return guard([&] { of(s).report(trial, step, value); });
    }
    static dsk_status should_prune(dsk_search* s, uint64_t trial, int32_t* out) {
        return guard([&] { *out = of(s).should_prune(trial) ? 1 : 0; });
    }
    static dsk_status complete(dsk_search* s, uint64_t trial, uint32_t state, double value) {
        return guard([&] {
            TrialState st;
            switch (state) {
                case DSK_TRIAL_COMPLETE: st = TrialState::Complete; break;
                case DSK_TRIAL_PRUNED: st = TrialState::Pruned; break;
                case DSK_TRIAL_FAILED: st = TrialState::Failed; break;
                default: throw Error(DSK_INVALID_ARGUMENT, "complete: unknown trial state " + std::to_string(state));
            }
            of(s).complete(trial, st, value);
        });
    }
    static dsk_status add_trial(dsk_search* s, uint64_t trial, const dsk_config* assignment) {
        return guard([&] {
            Search& search = of(s);
            if (assignment == nullptr) throw Error(DSK_INVALID_ARGUMENT, "add_trial: no assignment given");
            search.add(trial, search.space().read(Config(assignment), "the added trial " + std::to_string(trial)));
        });
    }
    static void destroy(dsk_search* s) { delete &of(s); }
};

}  // namespace detail

// The C interface of strategy T, constructible as T(Space, const Config& options, uint64_t seed).
// `params` (the strategy's options, validated by the caller through config_check) are kept by
// pointer: pass a static array. Register the result (kept in static storage) with reg.search().
template <class T>
dsk_search_iface make_iface(const char* name, const char* description, const dsk_param_spec* params, size_t param_count) {
    using Th = detail::SearchThunks<T>;
    return dsk_search_iface{sizeof(dsk_search_iface), name, description, nullptr, params, param_count, &Th::create, &Th::suggest,
                            &Th::report, &Th::should_prune, &Th::complete, &Th::destroy, &Th::add_trial};
}

}  // namespace dsk::search

#endif  // DSK_SEARCH_HPP_
