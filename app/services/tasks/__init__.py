"""The task domain: states and their edges, submit, claim, reports and the server's own
transitions, the retry policy, events and reads. Every status change goes through
`transitions` and the store's statements; `service.TaskService` commits and publishes."""
