/* The runtime agent (`labbook agent CONFIG.json`): one per runtime, it starts and
 * supervises a Jupyter kernel and relays its messages to and from the hub over one
 * stream (wire/stream.h). See docs/agent.md and docs/agent-protocol.md.
 */
#ifndef LABBOOK_AGENT_AGENT_H
#define LABBOOK_AGENT_AGENT_H

/* Runs the agent: argv[0] is "agent", argv[1] the config file. Returns the process
 * exit status: 0 after a shutdown (STREAM_SHUTDOWN, hub EOF, SIGTERM), 1 when the
 * hub cannot be reached, 2 for a bad command line or config. */
int agent_main(int argc, char **argv);

#endif
