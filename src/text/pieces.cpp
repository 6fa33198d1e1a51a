#include "text/pieces.h"

#include <algorithm>

#include "text/regex.h"

namespace alignpro::text {

Spans match_spans(const Regex& regex, std::string_view text, bool invert) {
  Spans spans;
  if (text.empty()) {
    spans.push_back({0, 0, invert});
    return spans;
  }
  size_t previous = 0;
  for (const auto& [begin, end] : regex.find_all(text)) {
    if (previous != begin) spans.push_back({previous, begin, invert});
    spans.push_back({begin, end, !invert});
    previous = end;
  }
  if (previous != text.size()) spans.push_back({previous, text.size(), invert});
  return spans;
}

void split_piece(const Piece& piece, const Spans& spans, SplitBehavior behavior, Pieces& out) {
  // (begin, end, removed) for each part, following the reference's fold over the matches.
  std::vector<std::tuple<size_t, size_t, bool>> parts;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Span& s : spans) parts.emplace_back(s.begin, s.end, false);
      break;
    case SplitBehavior::kRemoved:
      for (const Span& s : spans) parts.emplace_back(s.begin, s.end, s.match);
      break;
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.match == previous_match && !parts.empty()) {
          std::get<1>(parts.back()) = s.end;
        } else {
          parts.emplace_back(s.begin, s.end, false);
        }
        previous_match = s.match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.match && !previous_match && !parts.empty()) {
          std::get<1>(parts.back()) = s.end;
        } else {
          parts.emplace_back(s.begin, s.end, false);
        }
        previous_match = s.match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->match && !previous_match && !parts.empty()) {
          std::get<0>(parts.back()) = it->begin;
        } else {
          parts.emplace_back(it->begin, it->end, false);
        }
        previous_match = it->match;
      }
      std::reverse(parts.begin(), parts.end());
      break;
    }
  }
  for (const auto& [begin, end, removed] : parts) {
    if (removed) continue;
    out.push_back({piece.text.substr(begin, end - begin), -1, piece.at_start && begin == 0});
  }
}

}  // namespace alignpro::text
