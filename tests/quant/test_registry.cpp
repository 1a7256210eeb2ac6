#include <gtest/gtest.h>
#include "quant/codec.h"
TEST(Registry, Placeholder) { EXPECT_GT(moelab::quant::all_codecs().size(), 20u); }
