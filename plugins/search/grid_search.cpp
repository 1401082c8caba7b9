// `grid`: every combination of the parameters' grid values, each suggested once, then
// RESOURCE_EXHAUSTED. Categorical parameters contribute their choices; numeric ones `points`
// values from low to high (geometric for log); int ranges with no more than `points` integers
// contribute all of them. A conditional parameter multiplies only the branch where it is active.
// A point that was added as a known trial (add_trial) is not suggested again.
#include "strategies.h"

namespace dsk::search {

namespace {

const dsk_param_spec kGridParams[] = {
    param_int("points", "grid values per float/int parameter", "5", 2, 10000),
    param_bool("shuffle", "suggest the grid in a random order (from the seed) instead of in order", "false"),
};
constexpr size_t kMaxGrid = 1000000;

std::vector<Value> grid_values(const Param& p, int64_t points) {
    if (p.type == ParamType::Categorical) return p.choices;
    std::vector<Value> values;
    if (p.type == ParamType::Int && p.high - p.low + 1 <= static_cast<double>(points)) {
        for (double x = p.low; x <= p.high; ++x) values.push_back(Value::of_int(static_cast<int64_t>(x)));
        return values;
    }
    for (int64_t k = 0; k < points; ++k) {
        const double t = static_cast<double>(k) / static_cast<double>(points - 1);
        double x = p.log ? std::exp(std::log(p.low) + t * (std::log(p.high) - std::log(p.low))) : p.low + t * (p.high - p.low);
        x = std::clamp(x, p.low, p.high);
        Value v = p.type == ParamType::Int ? Value::of_int(static_cast<int64_t>(std::round(x))) : Value::of_float(x);
        if (values.empty() || values.back() != v) values.push_back(v);
    }
    return values;
}

class GridSearch : public Search {
public:
    GridSearch(Space space, const Config& options, uint64_t seed) : Search(std::move(space)) {
        const int64_t points = options.get_or<int64_t>("points", 5);
        std::vector<std::vector<Value>> values;
        for (const Param& p : this->space().params()) values.push_back(grid_values(p, points));
        Assignment a;
        enumerate(0, values, a);
        if (options.get_or("shuffle", false)) {
            Random random(seed);
            for (size_t i = grid_.size(); i > 1; --i) std::swap(grid_[i - 1], grid_[random.below(i)]);
        }
    }

protected:
    Assignment propose(uint64_t) override {
        if (next_ >= grid_.size())
            throw Error(DSK_RESOURCE_EXHAUSTED, "grid: all " + std::to_string(grid_.size()) +
                                                    " points of the search space were suggested");
        return grid_[next_++];
    }

    // An added trial (an enqueued configuration) takes its point off the list still to come.
    void on_add(const Trial& trial) override {
        const auto it = std::find(grid_.begin() + static_cast<ptrdiff_t>(next_), grid_.end(), trial.params);
        if (it != grid_.end()) grid_.erase(it);
    }

private:
    void enumerate(size_t i, const std::vector<std::vector<Value>>& values, Assignment& a) {
        const auto& params = space().params();
        if (i == params.size()) {
            if (grid_.size() >= kMaxGrid)
                throw Error(DSK_INVALID_ARGUMENT, "grid: the search space has more than " + std::to_string(kMaxGrid) +
                                                      " points; lower `points` or use another strategy");
            grid_.push_back(a);
            return;
        }
        const Param& p = params[i];
        if (!space().active(p, a)) {
            enumerate(i + 1, values, a);
            return;
        }
        for (const Value& v : values[i]) {
            a[p.name] = v;
            enumerate(i + 1, values, a);
        }
        a.erase(p.name);
    }

    std::vector<Assignment> grid_;
    size_t next_ = 0;
};

}  // namespace

dsk_search_iface grid_iface() {
    return make_iface<GridSearch>("grid", "Grid search: every combination once, then RESOURCE_EXHAUSTED", kGridParams,
                                  std::size(kGridParams));
}

}  // namespace dsk::search
