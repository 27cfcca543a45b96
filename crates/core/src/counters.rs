//! [`counters!`](crate::counters): the counters of a running component, a handle to read them
//! and the summary it returns, declared once per crate.

/// Declares, in the calling module, a `pub(crate) struct Counters` of `AtomicU64`s (with
/// `Counters::add` and `Counters::sub`), a public `Copy` summary struct with one `u64` per
/// counter, and on the public stats handle (a struct the caller declares with a
/// `counters: Arc<Counters>` field) one getter per counter plus `summary()`. Every counter's
/// doc comment is used for its getter and its summary field.
///
/// ```
/// use std::sync::Arc;
///
/// logferry_core::counters! {
///     /// What the widget did.
///     summary WidgetSummary for WidgetStats;
///     /// Widgets made.
///     made,
///     /// Widgets broken.
///     broken,
/// }
///
/// /// A handle on a widget's counters.
/// #[derive(Clone, Debug, Default)]
/// pub struct WidgetStats {
///     counters: Arc<Counters>,
/// }
///
/// let stats = WidgetStats::default();
/// Counters::add(&stats.counters.made, 3);
/// Counters::add(&stats.counters.broken, 1);
/// Counters::sub(&stats.counters.broken, 1);
/// assert_eq!(stats.made(), 3);
/// assert_eq!(stats.summary(), WidgetSummary { made: 3, broken: 0 });
/// ```
#[macro_export]
macro_rules! counters {
    (
        $(#[$summary_doc:meta])*
        summary $summary:ident for $stats:ident;
        $($(#[$doc:meta])* $name:ident),* $(,)?
    ) => {
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $name: ::std::sync::atomic::AtomicU64,)*
        }

        #[allow(dead_code)]
        impl Counters {
            /// Adds `n` (nothing when `n` is 0).
            pub(crate) fn add(counter: &::std::sync::atomic::AtomicU64, n: u64) {
                if n != 0 {
                    counter.fetch_add(n, ::std::sync::atomic::Ordering::Relaxed);
                }
            }

            /// Subtracts `n` (for gauges).
            pub(crate) fn sub(counter: &::std::sync::atomic::AtomicU64, n: u64) {
                counter.fetch_sub(n, ::std::sync::atomic::Ordering::Relaxed);
            }
        }

        $(#[$summary_doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct $summary {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl $stats {
            $($(#[$doc])* pub fn $name(&self) -> u64 {
                self.counters.$name.load(::std::sync::atomic::Ordering::Relaxed)
            })*

            /// All counters at once.
            pub fn summary(&self) -> $summary {
                $summary { $($name: self.$name(),)* }
            }
        }
    };
}
