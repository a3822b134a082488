// The vocabulary of core/raft: terms, indices, entries, configurations.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/env.h"

namespace mks::raft {

using Term = uint64_t;
using Index = uint64_t;  // log positions start at 1; 0 means "none"

enum class EntryType : uint8_t {
  kCommand = 0,  // for the state machine
  kConfig = 1,   // a serialized Config, interpreted by the library
  kNoop = 2,     // a new leader's first entry, which commits its term
};

struct Entry {
  Term term = 0;
  Index index = 0;
  EntryType type = EntryType::kCommand;
  std::string data;
  friend bool operator==(const Entry&, const Entry&) = default;
};

// Who takes part. Invariant: voters and learners ascending, disjoint, no
// kNoNode. Voters elect and commit; learners only receive the log.
struct Config {
  std::vector<NodeId> voters;
  std::vector<NodeId> learners;

  bool IsVoter(NodeId node) const {
    return std::binary_search(voters.begin(), voters.end(), node);
  }
  bool IsLearner(NodeId node) const {
    return std::binary_search(learners.begin(), learners.end(), node);
  }
  bool Contains(NodeId node) const { return IsVoter(node) || IsLearner(node); }
  // Votes (or acknowledgements) a decision needs: a majority of voters.
  size_t Quorum() const { return voters.size() / 2 + 1; }
  // Every member, voters first.
  std::vector<NodeId> Members() const {
    std::vector<NodeId> all = voters;
    all.insert(all.end(), learners.begin(), learners.end());
    return all;
  }
  // Sorts both lists; false when they overlap, repeat or hold kNoNode.
  bool Normalize();
  std::string ToString() const;
  friend bool operator==(const Config&, const Config&) = default;
};

// Config <-> the bytes of a kConfig entry (a mks.proto.RaftConfig).
std::string EncodeConfig(const Config& config);
// False for bytes that do not parse or break Config's invariant.
bool DecodeConfig(std::string_view bytes, Config* config);

}  // namespace mks::raft
