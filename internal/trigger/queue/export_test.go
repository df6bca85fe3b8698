package queue

// Overlap exposes overlap to the tests.
var Overlap = overlap
