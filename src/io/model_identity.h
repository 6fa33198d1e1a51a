// Cheap, stable identities of the models a run depends on, stored in checkpoints so that a run
// is never resumed against other models. Reading gigabytes of weights is not needed: the small
// files (config, tokenizer) are hashed whole; weight files by name, size, their safetensors
// header and evenly spaced samples of their bytes, which catches a fine-tuned copy of the same
// architecture (a fine-tune changes nearly every weight).
#pragma once

#include <string>
#include <string_view>

namespace alignpro {

// "<16 hex digits>" for a Hugging Face model folder. InputError naming the folder when it is
// missing, has no config.json, or a safetensors file's header is cut short.
std::string model_folder_identity(const std::string& folder);

// The same kind of identity for a text (a pool of templates, a rule-based reward's settings).
std::string text_identity(std::string_view text);

}  // namespace alignpro
