//! Changing the parameter groups: adding one (`add_param_group`, checked
//! first by `check_param_group`), editing their options (`set_lr`,
//! `update_group`, `update_groups`) and their extra keys.

use super::extra::ExtraValue;
use super::group::{check_extra, check_extra_key};
use super::{Adadelta, GroupSpec, Options, ParamGroup, Shaped};
use crate::Error;

impl<P: Shaped> Adadelta<P> {
    /// Checks that [`add_param_group`](Self::add_param_group) would accept
    /// `group`, without taking it; returns the group's filled-in options.
    ///
    /// ```
    /// use adadelta::{Adadelta, GroupSpec, Param};
    /// let opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?;
    /// let bad = GroupSpec::new(vec![Param::new(vec![1.0])]).rho(1.5);
    /// assert_eq!(opt.check_param_group(&bad).unwrap_err().to_string(), "Invalid rho value: 1.5");
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn check_param_group(&self, group: &GroupSpec<P>) -> Result<Options, Error> {
        let options = group.options(&self.defaults);
        options.validate()?;
        check_extra(&group.extra)?;
        let ps = &group.params;
        for (i, p) in ps.iter().enumerate() {
            if ps[..i].iter().any(|q| p.is_same(q)) {
                return Err(Error::DuplicateParam);
            }
        }
        let with_names = group.param_names.is_some();
        if self
            .groups
            .iter()
            .any(|g| g.param_names.is_some() != with_names)
        {
            return Err(Error::MixedParamNames { with_names });
        }
        if ps.iter().any(|p| self.params.iter().any(|q| p.is_same(q))) {
            return Err(Error::ParamInMultipleGroups);
        }
        Ok(options)
    }

    /// Adds a parameter group (PyTorch's `add_param_group`): its unset
    /// options are filled from the defaults, then checked in PyTorch's order:
    ///
    /// * the options ([`Options::validate`]; PyTorch does not check a
    ///   group's own values, this crate does), and the extra keys;
    /// * a parameter twice in the group: [`Error::DuplicateParam`]. PyTorch
    ///   only warns and then updates that parameter twice per step; this
    ///   crate refuses it;
    /// * a group of named parameters ([`GroupSpec::named`]) in an optimizer
    ///   whose groups are not named, or the reverse:
    ///   [`Error::MixedParamNames`] (PyTorch's `ValueError`);
    /// * a parameter already in another group:
    ///   [`Error::ParamInMultipleGroups`] (PyTorch's `ValueError`).
    ///
    /// The duplicate and overlap checks need [`Parameter::is_same`](super::Parameter::is_same); owned parameters such as
    /// [`Param`](super::Param) can never be given twice. The new parameters are numbered
    /// after the existing ones. On error the optimizer is unchanged and
    /// `group` is dropped; use [`check_param_group`](Self::check_param_group)
    /// first to keep it.
    ///
    /// ```
    /// use adadelta::{Adadelta, GroupSpec, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?;
    /// opt.add_param_group(GroupSpec::new(vec![Param::new(vec![0.0; 2])]).lr(0.5))?;
    /// assert_eq!(opt.param_groups()[1].params(), 1..2);
    /// let err = opt.add_param_group(GroupSpec::named([("head", Param::new(vec![0.0]))])).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "all optimizer param groups should be with/without names. \
    ///      cannot add param group with names to the optimizer"
    /// );
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn add_param_group(&mut self, group: GroupSpec<P>) -> Result<(), Error> {
        let options = self.check_param_group(&group)?;
        let GroupSpec {
            params,
            extra,
            param_names,
            ..
        } = group;
        self.groups.push(ParamGroup {
            options,
            extra,
            param_names,
            start: self.params.len(),
            len: params.len(),
        });
        self.states.extend(params.iter().map(|_| None));
        self.params.extend(params);
        Ok(())
    }

    /// Sets every group's learning rate (PyTorch's `for g in
    /// opt.param_groups: g["lr"] = lr`), as a learning-rate schedule does.
    /// An invalid value changes nothing.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?;
    /// opt.set_lr(0.5)?;
    /// assert_eq!(opt.param_groups()[0].options().lr, 0.5);
    /// assert_eq!(opt.set_lr(-1.0).unwrap_err().to_string(), "Invalid learning rate: -1.0");
    /// assert_eq!(opt.param_groups()[0].options().lr, 0.5);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn set_lr(&mut self, lr: f64) -> Result<(), Error> {
        self.update_groups(|_, o| o.lr = lr)
    }

    /// Changes one group's options through `edit`, then validates them; on
    /// error the group keeps its old options.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?;
    /// opt.update_group(0, |o| { o.rho = 0.95; o.weight_decay = 1e-4 })?;
    /// assert_eq!(opt.param_groups()[0].options().rho, 0.95);
    /// assert!(opt.update_group(0, |o| o.rho = 1.01).is_err());
    /// assert_eq!(opt.param_groups()[0].options().rho, 0.95);
    /// assert!(opt.update_group(1, |_| ()).is_err()); // no group 1
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn update_group(
        &mut self,
        group: usize,
        edit: impl FnOnce(&mut Options),
    ) -> Result<(), Error> {
        let g = self.group_index(group)?;
        let mut o = self.groups[g].options;
        edit(&mut o);
        o.validate()?;
        self.groups[g].options = o;
        Ok(())
    }

    /// Changes every group's options through `edit(group index, options)`,
    /// then validates them all; on any error no group changes.
    ///
    /// ```
    /// use adadelta::{Adadelta, GroupSpec, Param};
    /// let mut opt = Adadelta::with_groups(
    ///     vec![GroupSpec::new(vec![Param::new(vec![0.0])]).lr(1.0), GroupSpec::new(vec![]).lr(0.1)],
    ///     Default::default(),
    /// )?;
    /// opt.update_groups(|_, o| o.lr *= 0.5)?; // a step decay
    /// assert_eq!((opt.param_groups()[0].options().lr, opt.param_groups()[1].options().lr), (0.5, 0.05));
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn update_groups(
        &mut self,
        mut edit: impl FnMut(usize, &mut Options),
    ) -> Result<(), Error> {
        let mut new = Vec::with_capacity(self.groups.len());
        for (i, g) in self.groups.iter().enumerate() {
            let mut o = g.options;
            edit(i, &mut o);
            o.validate()?;
            new.push(o);
        }
        for (g, o) in self.groups.iter_mut().zip(new) {
            g.options = o;
        }
        Ok(())
    }

    /// Sets an extra key of a group (see [`GroupSpec::extra`]), e.g. the
    /// `initial_lr` an LR scheduler records; returns the old value.
    /// [`Error::ReservedGroupKey`] for a key this crate interprets.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?;
    /// opt.set_group_extra(0, "initial_lr", 1.0)?;
    /// assert_eq!(opt.state_dict().param_groups[0].extra["initial_lr"].as_f64(), Some(1.0));
    /// assert!(opt.set_group_extra(0, "lr", 1.0).is_err());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn set_group_extra(
        &mut self,
        group: usize,
        key: impl Into<String>,
        value: impl Into<ExtraValue>,
    ) -> Result<Option<ExtraValue>, Error> {
        let g = self.group_index(group)?;
        let key = key.into();
        check_extra_key(&key)?;
        Ok(self.groups[g].extra.insert(key, value))
    }

    /// Removes an extra key of a group; returns its value.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let mut opt = Adadelta::new(vec![Param::new(vec![0.0])], Default::default())?;
    /// opt.set_group_extra(0, "note", "x")?;
    /// assert_eq!(opt.remove_group_extra(0, "note")?, Some("x".into()));
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn remove_group_extra(
        &mut self,
        group: usize,
        key: &str,
    ) -> Result<Option<ExtraValue>, Error> {
        let g = self.group_index(group)?;
        Ok(self.groups[g].extra.remove(key))
    }
}
