//! Hooks: PyTorch's step, `state_dict` and `load_state_dict` hooks, each
//! removable through the [`HookHandle`] its registration returns.
//!
//! Hooks are `Fn + Send + Sync` closures so that the optimizer stays `Send +
//! Sync` and a hook may run while another call of the same hook is under
//! way; keep mutable hook state in a `Mutex` or an atomic. A hook that
//! calls the operation that runs it (a step pre-hook calling `step`)
//! recurses, as in PyTorch. There are no
//! global hooks (PyTorch's `register_optimizer_step_pre_hook`): this crate has
//! no global state.

use std::sync::Arc;

use super::state_dict::StateDict;
use super::{Adadelta, Shaped};

/// Identifies one registered hook for [`Adadelta::remove_hook`], as
/// PyTorch's `RemovableHandle`. A handle belongs to the optimizer that
/// returned it.
///
/// ```
/// use adadelta::{Adadelta, Param};
/// let mut opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?;
/// let h = opt.register_step_pre_hook(|_opt| println!("about to step"));
/// assert!(opt.remove_hook(h));
/// assert!(!opt.remove_hook(h)); // already removed
/// # Ok::<(), adadelta::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HookHandle(pub(crate) u64);

/// A step pre- or post-hook: called with the optimizer.
///
/// ```
/// use std::sync::Arc;
/// let hook: Arc<adadelta::optimizer::StepHook<adadelta::Param>> = Arc::new(|opt| {
///     let _ = opt.set_lr(0.5);
/// });
/// # let _ = hook;
/// ```
pub type StepHook<P> = dyn Fn(&mut Adadelta<P>) + Send + Sync;
/// A `state_dict` pre-hook: called with the optimizer before the dict is built.
///
/// ```
/// use std::sync::Arc;
/// let hook: Arc<adadelta::optimizer::StateDictPreHook<adadelta::Param>> =
///     Arc::new(|opt| println!("{} groups", opt.param_groups().len()));
/// # let _ = hook;
/// ```
pub type StateDictPreHook<P> = dyn Fn(&Adadelta<P>) + Send + Sync;
/// A `state_dict` post-hook: may change the dict that `state_dict` returns
/// (PyTorch's hook returning a replacement).
///
/// ```
/// use std::sync::Arc;
/// let hook: Arc<adadelta::optimizer::StateDictPostHook<adadelta::Param>> =
///     Arc::new(|_opt, sd| sd.state.clear());
/// # let _ = hook;
/// ```
pub type StateDictPostHook<P> =
    dyn Fn(&Adadelta<P>, &mut StateDict<<P as Shaped>::Elem>) + Send + Sync;
/// A `load_state_dict` pre-hook: may change the dict before it is checked
/// and loaded (PyTorch's hook returning a replacement).
///
/// ```
/// use std::sync::Arc;
/// let hook: Arc<adadelta::optimizer::LoadStateDictPreHook<adadelta::Param>> =
///     Arc::new(|_opt, sd| sd.param_groups.iter_mut().for_each(|g| g.options.lr = 0.1));
/// # let _ = hook;
/// ```
pub type LoadStateDictPreHook<P> =
    dyn Fn(&Adadelta<P>, &mut StateDict<<P as Shaped>::Elem>) + Send + Sync;
/// A `load_state_dict` post-hook: called with the optimizer after a
/// successful load.
///
/// ```
/// use std::sync::Arc;
/// let hook: Arc<adadelta::optimizer::LoadStateDictPostHook<adadelta::Param>> =
///     Arc::new(|opt| opt.zero_grad(true));
/// # let _ = hook;
/// ```
pub type LoadStateDictPostHook<P> = dyn Fn(&mut Adadelta<P>) + Send + Sync;

/// Hooks of one kind, in call order.
pub(crate) struct HookList<F: ?Sized> {
    entries: Vec<(u64, Arc<F>)>,
}

impl<F: ?Sized> Default for HookList<F> {
    fn default() -> Self {
        HookList {
            entries: Vec::new(),
        }
    }
}

impl<F: ?Sized> HookList<F> {
    /// Adds a hook last, or first with `prepend` (PyTorch's
    /// `move_to_end(last=False)`).
    pub(crate) fn add(&mut self, id: u64, hook: Arc<F>, prepend: bool) {
        if prepend {
            self.entries.insert(0, (id, hook));
        } else {
            self.entries.push((id, hook));
        }
    }

    /// Removes the hook `id`; whether it was there.
    pub(crate) fn remove(&mut self, id: u64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(i, _)| *i != id);
        self.entries.len() != before
    }

    /// The hooks as they are now, to call while the optimizer is borrowed.
    /// A hook registered or removed by a hook takes effect from the next call.
    pub(crate) fn snapshot(&self) -> Vec<Arc<F>> {
        self.entries.iter().map(|(_, h)| Arc::clone(h)).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl<F: ?Sized> Clone for HookList<F> {
    fn clone(&self) -> Self {
        HookList {
            entries: self.entries.clone(),
        }
    }
}

/// Every hook of one optimizer.
///
/// A clone holds the same hooks (the closures are shared, as
/// `copy.deepcopy` of a PyTorch optimizer keeps the same hook functions)
/// and the same handle numbering: a handle of the original removes the
/// same hook from the clone.
pub(crate) struct Hooks<P: Shaped> {
    next_id: u64,
    pub(crate) step_pre: HookList<StepHook<P>>,
    pub(crate) step_post: HookList<StepHook<P>>,
    pub(crate) state_dict_pre: HookList<StateDictPreHook<P>>,
    pub(crate) state_dict_post: HookList<StateDictPostHook<P>>,
    pub(crate) load_pre: HookList<LoadStateDictPreHook<P>>,
    pub(crate) load_post: HookList<LoadStateDictPostHook<P>>,
}

impl<P: Shaped> Clone for Hooks<P> {
    fn clone(&self) -> Self {
        Hooks {
            next_id: self.next_id,
            step_pre: self.step_pre.clone(),
            step_post: self.step_post.clone(),
            state_dict_pre: self.state_dict_pre.clone(),
            state_dict_post: self.state_dict_post.clone(),
            load_pre: self.load_pre.clone(),
            load_post: self.load_post.clone(),
        }
    }
}

impl<P: Shaped> Default for Hooks<P> {
    fn default() -> Self {
        Hooks {
            next_id: 0,
            step_pre: HookList::default(),
            step_post: HookList::default(),
            state_dict_pre: HookList::default(),
            state_dict_post: HookList::default(),
            load_pre: HookList::default(),
            load_post: HookList::default(),
        }
    }
}

impl<P: Shaped> Hooks<P> {
    /// A new handle id, unique within this optimizer.
    pub(crate) fn next(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub(crate) fn remove(&mut self, id: u64) -> bool {
        self.step_pre.remove(id)
            || self.step_post.remove(id)
            || self.state_dict_pre.remove(id)
            || self.state_dict_post.remove(id)
            || self.load_pre.remove(id)
            || self.load_post.remove(id)
    }

    pub(crate) fn count(&self) -> usize {
        self.step_pre.len()
            + self.step_post.len()
            + self.state_dict_pre.len()
            + self.state_dict_post.len()
            + self.load_pre.len()
            + self.load_post.len()
    }
}

impl<P: Shaped> Adadelta<P> {
    fn register<F: ?Sized>(
        &mut self,
        list: impl FnOnce(&mut Hooks<P>) -> &mut HookList<F>,
        hook: Arc<F>,
        prepend: bool,
    ) -> HookHandle {
        let id = self.hooks.next();
        list(&mut self.hooks).add(id, hook, prepend);
        HookHandle(id)
    }

    /// Registers a hook called with the optimizer at the start of every
    /// [`step`](Self::step) / [`step_with`](Self::step_with), before the
    /// closure (PyTorch's `register_step_pre_hook`; hooks run in
    /// registration order). It may change the optimizer, e.g. the learning
    /// rate.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// opt.register_step_pre_hook(|opt| opt.set_lr(0.5).unwrap());
    /// opt.step()?;
    /// assert_eq!(opt.param_groups()[0].options().lr, 0.5);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn register_step_pre_hook(
        &mut self,
        hook: impl Fn(&mut Self) + Send + Sync + 'static,
    ) -> HookHandle {
        self.register(
            |h| &mut h.step_pre,
            Arc::new(hook) as Arc<StepHook<P>>,
            false,
        )
    }

    /// Registers a hook called with the optimizer after every successful
    /// step (PyTorch's `register_step_post_hook`).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use adadelta::{Adadelta, Param};
    /// let steps = Arc::new(AtomicUsize::new(0));
    /// let mut opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// let s = Arc::clone(&steps);
    /// opt.register_step_post_hook(move |_| { s.fetch_add(1, Ordering::Relaxed); });
    /// opt.step()?;
    /// opt.step()?;
    /// assert_eq!(steps.load(Ordering::Relaxed), 2);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn register_step_post_hook(
        &mut self,
        hook: impl Fn(&mut Self) + Send + Sync + 'static,
    ) -> HookHandle {
        self.register(
            |h| &mut h.step_post,
            Arc::new(hook) as Arc<StepHook<P>>,
            false,
        )
    }

    /// Registers a hook called with the optimizer before
    /// [`state_dict`](Self::state_dict) builds the dict; with `prepend` it
    /// runs before the hooks already registered.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// opt.register_state_dict_pre_hook(|opt| println!("saving {} groups", opt.param_groups().len()), false);
    /// let _ = opt.state_dict();
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn register_state_dict_pre_hook(
        &mut self,
        hook: impl Fn(&Self) + Send + Sync + 'static,
        prepend: bool,
    ) -> HookHandle {
        self.register(
            |h| &mut h.state_dict_pre,
            Arc::new(hook) as Arc<StateDictPreHook<P>>,
            prepend,
        )
    }

    /// Registers a hook that may change the dict
    /// [`state_dict`](Self::state_dict) returns (PyTorch's post-hook
    /// returning a replacement).
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// opt.register_state_dict_post_hook(
    ///     |_, sd| { sd.param_groups[0].extra.insert("saved_by", "me"); },
    ///     false,
    /// );
    /// assert_eq!(opt.state_dict().param_groups[0].extra["saved_by"].json(), r#""me""#);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn register_state_dict_post_hook(
        &mut self,
        hook: impl Fn(&Self, &mut StateDict<P::Elem>) + Send + Sync + 'static,
        prepend: bool,
    ) -> HookHandle {
        self.register(
            |h| &mut h.state_dict_post,
            Arc::new(hook) as Arc<StateDictPostHook<P>>,
            prepend,
        )
    }

    /// Registers a hook that may change a dict before
    /// [`load_state_dict`](Self::load_state_dict) checks and loads it.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// // Keep the current learning rate instead of the saved one.
    /// opt.register_load_state_dict_pre_hook(
    ///     |opt, sd| { for g in &mut sd.param_groups { g.options.lr = opt.param_groups()[0].options().lr; } },
    ///     false,
    /// );
    /// let mut sd = opt.state_dict();
    /// sd.param_groups[0].options.lr = 0.25;
    /// opt.load_state_dict(sd)?;
    /// assert_eq!(opt.param_groups()[0].options().lr, 1.0);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn register_load_state_dict_pre_hook(
        &mut self,
        hook: impl Fn(&Self, &mut StateDict<P::Elem>) + Send + Sync + 'static,
        prepend: bool,
    ) -> HookHandle {
        self.register(
            |h| &mut h.load_pre,
            Arc::new(hook) as Arc<LoadStateDictPreHook<P>>,
            prepend,
        )
    }

    /// Registers a hook called with the optimizer after a successful
    /// [`load_state_dict`](Self::load_state_dict).
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// opt.register_load_state_dict_post_hook(|opt| opt.set_lr(0.1).unwrap(), false);
    /// opt.load_state_dict(opt.state_dict())?;
    /// assert_eq!(opt.param_groups()[0].options().lr, 0.1);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn register_load_state_dict_post_hook(
        &mut self,
        hook: impl Fn(&mut Self) + Send + Sync + 'static,
        prepend: bool,
    ) -> HookHandle {
        self.register(
            |h| &mut h.load_post,
            Arc::new(hook) as Arc<LoadStateDictPostHook<P>>,
            prepend,
        )
    }

    /// Removes the hook `handle` identifies; whether it was registered
    /// (PyTorch's `handle.remove()`).
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// let h = opt.register_state_dict_pre_hook(|_| panic!("removed hooks never run"), false);
    /// assert!(opt.remove_hook(h));
    /// let _ = opt.state_dict();
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn remove_hook(&mut self, handle: HookHandle) -> bool {
        self.hooks.remove(handle.0)
    }
}
