"""The teacher's grading tools (not part of the student release): feedback without hidden tests."""
