//! The component's global allocator: size classes over bump-allocated chunks, on dlmalloc.
//!
//! Every request runs in a fresh instance whose memory is thrown away afterwards, so the
//! allocator never needs to give memory back or fight long-term fragmentation; it only has to be
//! fast. Blocks of up to [`SMALL_MAX`] bytes (the JSON values, strings and map nodes that make up
//! nearly all of a request's allocations) come from per-size free lists, refilled by bumping a
//! pointer through 64 KiB chunks; freed blocks go back on their list for reuse. Everything larger,
//! or aligned beyond 16, goes to dlmalloc, which coalesces.
//! Measured with `dynabox-bench --sandbox-only`: the GetItem call 25.4 -> 20.8 µs (dlmalloc's
//! malloc/free were ~30% of the guest's time).
//!
//! dlmalloc is the crate's own, not std's: std's (wasm32-unknown-unknown) takes all its memory
//! with `memory.grow` and leaves the instance's initial memory beyond the stack unused, so every
//! request grew its memory, and a grow costs an `mprotect` now and another, with an `madvise`,
//! when the next instance in the slot shrinks back: each a TLB shootdown across the server's
//! threads (2 `mprotect` and 1 `madvise` per GetItem; 27% of the server's CPU under load). This one
//! starts with the initial memory above the heap base (`link-arg=--initial-memory` in
//! `host/build.rs`), so a typical request never grows. The per-request memory cap holds as before.
//!
//! The size-class arithmetic is plain code, tested natively; only the `GlobalAlloc` is wasm's.

const GRANULE: usize = 16;
const SMALL_MAX: usize = 512;
const CLASSES: usize = SMALL_MAX / GRANULE;

/// The class of a small block (its size is [`class_size`]), or `None` for dlmalloc.
#[inline]
fn class(size: usize, align: usize) -> Option<usize> {
    (size <= SMALL_MAX && align <= GRANULE).then(|| size.max(1).div_ceil(GRANULE) - 1)
}

/// The bytes a block of `class` takes.
#[inline]
fn class_size(class: usize) -> usize {
    (class + 1) * GRANULE
}

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod global {
    use std::alloc::{GlobalAlloc, Layout};
    use std::cell::UnsafeCell;
    use std::ptr;

    use dlmalloc::Dlmalloc;

    use super::{CLASSES, GRANULE, class, class_size};

    const CHUNK: usize = 64 << 10;

    struct State {
        /// Heads of the free lists, one per class; a free block's first word is the next block.
        free: [*mut u8; CLASSES],
        /// The unused rest of the current chunk.
        next: usize,
        end: usize,
        /// Chunks and large blocks.
        large: Dlmalloc,
    }

    pub struct SizeClasses(UnsafeCell<State>);

    // SAFETY: the component has one thread; nothing here is reached concurrently.
    unsafe impl Sync for SizeClasses {}

    #[global_allocator]
    static ALLOCATOR: SizeClasses = SizeClasses(UnsafeCell::new(State {
        free: [ptr::null_mut(); CLASSES],
        next: 0,
        end: 0,
        large: Dlmalloc::new(),
    }));

    impl SizeClasses {
        /// SAFETY: single-threaded (see `Sync`), and no caller re-enters the allocator, so no two
        /// of these borrows overlap.
        #[allow(clippy::mut_from_ref)]
        unsafe fn state(&self) -> &mut State {
            unsafe { &mut *self.0.get() }
        }
    }

    unsafe impl GlobalAlloc for SizeClasses {
        #[inline]
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let state = unsafe { self.state() };
            let Some(class) = class(layout.size(), layout.align()) else {
                return unsafe { state.large.malloc(layout.size(), layout.align()) };
            };
            let head = state.free[class];
            if !head.is_null() {
                // SAFETY: `head` is a freed block of this class; its first word links the list.
                state.free[class] = unsafe { *head.cast::<*mut u8>() };
                return head;
            }
            let size = class_size(class);
            if state.end - state.next < size {
                let chunk = unsafe { state.large.malloc(CHUNK, GRANULE) };
                if chunk.is_null() {
                    return chunk;
                }
                state.next = chunk as usize;
                state.end = state.next + CHUNK;
            }
            let block = state.next;
            state.next += size;
            block as *mut u8
        }

        #[inline]
        unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
            let state = unsafe { self.state() };
            match class(layout.size(), layout.align()) {
                None => unsafe { state.large.free(block, layout.size(), layout.align()) },
                Some(class) => {
                    // SAFETY: the block is at least 16 bytes and 16-aligned.
                    unsafe { *block.cast::<*mut u8>() = state.free[class] };
                    state.free[class] = block;
                }
            }
        }

        #[inline]
        unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let old = class(layout.size(), layout.align());
            let new = class(new_size, layout.align());
            match (old, new) {
                (None, None) => unsafe { self.state().large.realloc(block, layout.size(), layout.align(), new_size) },
                (Some(a), Some(b)) if a == b => block,
                _ => {
                    // SAFETY: the caller guarantees `new_size` with this alignment is a valid layout.
                    let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                    let moved = unsafe { self.alloc(new_layout) };
                    if !moved.is_null() {
                        unsafe {
                            ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                            self.dealloc(block, layout);
                        }
                    }
                    moved
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_small_size_gets_the_smallest_class_that_holds_it() {
        for size in 0..=SMALL_MAX {
            let class = class(size, 1).unwrap();
            assert!(class < CLASSES, "{size}");
            assert!(class_size(class) >= size, "{size}");
            // No class smaller would do: at most one granule is wasted.
            assert!(class == 0 || class_size(class - 1) < size, "{size}");
        }
        assert_eq!([0, 1, 16, 17, 32, 33, 512].map(|size| class(size, 8)), [0, 0, 0, 1, 1, 2, 31].map(Some));
    }

    #[test]
    fn large_or_overaligned_blocks_go_to_dlmalloc() {
        assert_eq!(class(SMALL_MAX + 1, 1), None);
        assert_eq!(class(usize::MAX, 1), None);
        for align in [1, 2, 4, 8, 16] {
            assert_eq!(class(24, align), Some(1));
        }
        assert_eq!(class(24, 32), None);
        assert_eq!(class(0, 4096), None);
    }

    #[test]
    fn every_block_holds_the_free_list_link_and_keeps_the_granule_alignment() {
        assert!(GRANULE >= align_of::<*mut u8>());
        for class in 0..CLASSES {
            assert!(class_size(class) >= size_of::<*mut u8>());
            // Blocks are bumped one after another through a chunk: each starts aligned.
            assert_eq!(class_size(class) % GRANULE, 0);
        }
    }
}
