// Package main does not compile, on purpose: gobuild's tests check that
// go's error reaches the caller.
package main

func main() { undefinedFunction() }
