-- Version 27: erasure on the holder's express request (LC-5).
--
-- A closed space whose holder asked for deletion is erased once `lifecycle::ERASURE_GRACE_SECONDS`
-- have passed (within the 3 months LC-5 allows; reopening meanwhile cancels the request).
ALTER TABLE holders ADD COLUMN erase_requested_at BIGINT;
