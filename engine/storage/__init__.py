"""Storage: how a campaign's state is kept and written. Contacts as columns in blocks (`contact_table`,
`contact_blocks`, `id_rows`), finished attempts and messages as sealed rows (`sealed_base`, `sealed_layouts`,
`sealed`, `sealed_messages`), the recovery format of snapshots and archives (`recovery_format`, and
`recovery_inspect` for an operator), and the Redis key layout every writer and reader shares (`keys`)."""
