-- Item versions come from one clock for the whole store, so a key deleted and written again never
-- gets a version it had before (a guard holding that version would accept the new item). The
-- clock starts above every version already stored: until now each key counted from 1.
CREATE TABLE version_clock (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    reserved INTEGER NOT NULL
);
INSERT INTO version_clock (id, reserved) VALUES (1, 0);
