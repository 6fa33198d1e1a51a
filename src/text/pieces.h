// The pieces a text is cut into before the BPE model runs: added tokens are split out first,
// then each pre-tokenizer cuts the remaining pieces further, as the reference's
// PreTokenizedString does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace alignpro::text {

class Regex;

struct Piece {
  std::string text;
  // >= 0: an added token was matched here and is this id; the model does not run on it.
  int64_t id = -1;
  // The piece begins at byte 0 of the text being encoded (Metaspace's prepend_scheme "first").
  bool at_start = false;
};
using Pieces = std::vector<Piece>;

// What becomes of the delimiters when a piece is split on a pattern.
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Consecutive byte ranges covering all of a text, each marked as a pattern match or not.
struct Span {
  size_t begin;
  size_t end;
  bool match;
};
using Spans = std::vector<Span>;

// The spans of text for the matches of regex (an empty text gives one empty non-match span).
// With invert, matches and the text between them swap roles.
Spans match_spans(const Regex& regex, std::string_view text, bool invert = false);

// Appends the parts of piece that behavior keeps; at_start carries over to the first part.
void split_piece(const Piece& piece, const Spans& spans, SplitBehavior behavior, Pieces& out);

// Replaces each piece without a token by the pieces split(piece, out) appends, then drops
// empty pieces.
template <class SplitFn>
void split_each(Pieces& pieces, SplitFn split) {
  Pieces next;
  next.reserve(pieces.size());
  for (Piece& piece : pieces) {
    if (piece.id >= 0) {
      next.push_back(std::move(piece));
      continue;
    }
    size_t first = next.size();
    split(piece, next);
    size_t kept = first;
    for (size_t i = first; i < next.size(); ++i) {
      if (next[i].text.empty()) continue;
      if (kept != i) next[kept] = std::move(next[i]);
      ++kept;
    }
    next.resize(kept);
  }
  pieces = std::move(next);
}

}  // namespace alignpro::text
