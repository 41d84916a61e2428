//! The journal in use by a run: the document in memory and the store it is saved to after every
//! change. Steps record facts through it before and after each side effect.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use super::facts::Fact;
use super::record::{Journal, StepKey, now};
use super::store::{JournalStore, StoreError};

pub struct JournalHandle {
    journal: Mutex<Journal>,
    store: JournalStore,
}

impl JournalHandle {
    pub fn new(journal: Journal, store: JournalStore) -> Self {
        JournalHandle {
            journal: Mutex::new(journal),
            store,
        }
    }

    pub fn store(&self) -> &JournalStore {
        &self.store
    }

    /// Changes the journal and saves it before returning: when this returns, the change is
    /// durable.
    pub async fn update<R>(&self, f: impl FnOnce(&mut Journal) -> R) -> Result<R, StoreError> {
        let mut journal = self.journal.lock().await;
        let result = f(&mut journal);
        journal.updated_at = now();
        self.store.save(&journal).await?;
        Ok(result)
    }

    pub async fn read<R>(&self, f: impl FnOnce(&Journal) -> R) -> R {
        let journal = self.journal.lock().await;
        f(&journal)
    }

    pub async fn snapshot(&self) -> Journal {
        self.journal.lock().await.clone()
    }

    /// A fact a step recorded.
    pub async fn fact<T: DeserializeOwned>(&self, key: &StepKey, fact: &Fact<T>) -> Option<T> {
        let journal = self.journal.lock().await;
        journal.step(key)?.get(fact)
    }

    /// Records a fact of a step, durably.
    pub async fn record<T: Serialize>(
        &self,
        key: &StepKey,
        fact: &Fact<T>,
        value: &T,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.update(|j| {
            if let Some(step) = j.step_mut(key) {
                step.facts.insert(fact.name().to_string(), value);
            }
        })
        .await
    }

    /// A run-wide fact (the health baseline, the lock holder).
    pub async fn run_fact<T: DeserializeOwned>(&self, fact: &Fact<T>) -> Option<T> {
        self.journal.lock().await.get(fact)
    }

    /// Records a run-wide fact, durably.
    pub async fn record_run_fact<T: Serialize>(
        &self,
        fact: &Fact<T>,
        value: &T,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.update(|j| {
            j.facts.insert(fact.name().to_string(), value);
        })
        .await
    }

    /// A fact recorded by the latest step with id `step_id`, in any section or hop.
    pub async fn fact_of<T: DeserializeOwned>(&self, step_id: &str, fact: &Fact<T>) -> Option<T> {
        let journal = self.journal.lock().await;
        journal.fact_of(step_id, fact)
    }
}
