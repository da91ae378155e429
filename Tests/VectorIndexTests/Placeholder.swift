// Tests for VectorIndex.
