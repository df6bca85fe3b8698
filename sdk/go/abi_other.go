//go:build !wasip1

package gust

// Outside wasip1 there is no host to export to: Handle and HandleHTTP only
// record the handler, so packages using the SDK build and test anywhere.
