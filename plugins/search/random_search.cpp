// `random`: every active parameter drawn independently (log-uniformly where `log = true`). The
// baseline every other strategy is measured against (Bergstra & Bengio 2012).
#include "strategies.h"

namespace dsk::search {

namespace {

class RandomSearch : public Search {
public:
    RandomSearch(Space space, const Config&, uint64_t seed) : Search(std::move(space)), seed_(seed) {}

protected:
    Assignment propose(uint64_t trial) override {
        Random random(mix(seed_, trial));
        return space().sample(random);
    }

private:
    uint64_t seed_;
};

}  // namespace

dsk_search_iface random_iface() {
    return make_iface<RandomSearch>("random", "Random search: independent uniform (or log-uniform) draws", nullptr, 0);
}

}  // namespace dsk::search
