// The message of the moelab::Error a piece of test code must throw: tests of
// bad input assert on what the message names (file, field, reason).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace moelab::test {

// Runs `fn`, which must throw moelab::Error; returns its message (a test
// failure, and "", when nothing or something else is thrown).
template <class Fn>
std::string error_of(Fn &&fn) {
  try {
    fn();
  } catch (const moelab::Error &e) {
    return e.what();
  }
  ADD_FAILURE() << "no moelab::Error thrown";
  return "";
}

}  // namespace moelab::test
