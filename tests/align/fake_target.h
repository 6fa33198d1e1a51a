// A stand-in for the frozen target in step tests: whether its response thanks the user depends
// on the wording of the rewrite it sees, so that a prompter can learn which wording pays.
#pragma once

#include <string>
#include <vector>

#include "align/rollout.h"

namespace alignpro::testing {

class WordingTarget final : public Responder {
 public:
  // The chance that a response to a rewrite holding the word says "thank you".
  static double thanks_probability(const std::string& rewrite) {
    if (rewrite.find("politely") != std::string::npos) return 0.9;
    if (rewrite.find("briefly") != std::string::npos) return 0.5;
    return 0.1;
  }
  std::vector<std::string> respond(const std::vector<std::string>& rewrites,
                                   std::vector<RngStream>& streams) override {
    std::vector<std::string> out;
    for (size_t i = 0; i < rewrites.size(); ++i) {
      const bool thanks = streams.at(i).uniform() < thanks_probability(rewrites[i]);
      out.push_back(thanks ? "Sure, thank you for asking." : "Sure.");
    }
    return out;
  }
};

inline const std::vector<std::string>& wording_pool() {
  static const std::vector<std::string> pool = {"{prompt}", "Answer briefly: {prompt}",
                                                "Answer politely: {prompt}",
                                                "{prompt} (reply politely and briefly)"};
  return pool;
}

}  // namespace alignpro::testing
