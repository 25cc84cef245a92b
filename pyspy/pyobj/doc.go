// Package pyobj decodes CPython objects from a target's memory, given their
// address and the interpreter build's layout: the type of an object and its
// name; str, bytes, int, float, bool and None; the items of tuples, lists,
// dicts and sets, and lookups in dicts; instance attributes, wherever the
// version keeps them; code objects with their line tables; a frame's
// arguments and locals; and repr() of all of these, bounded.
//
// It has no sampler in it: the stack reader's walks, its thread names and
// dump's locals use it, and so can any walker that starts from an object
// address (a greenlet, an asyncio task). Everything is read through a
// mem.Cache and treated as untrusted: lengths, counts, depths and string
// sizes are bounded, so corrupt memory gives an error, not a panic or a
// hang. A Decoder keeps the types of one process, and its Codes the code
// objects: both are immutable, so they are cached per process, in bounded
// caches.
package pyobj
