%% epx_bench: the in-node half of `make bench` (bench/bench.c).
%%
%% Every figure that involves the distribution is timed inside a node, with
%% erlang:monotonic_time/0, so that the test driver's stdio channel (the
%% epx_agent) never counts.  The results are plain integers or tuples of
%% integers, easy to read from the agent's one-line `~p` reply.
%%
%% Node up/down times are taken with os:system_time(microsecond): that is
%% the host's CLOCK_REALTIME, the clock the C side reads around a control
%% command, so the two can be subtracted (every node runs on this host).
-module(epx_bench).

-export([rpc/2, bulk/3, sink/0, info/0]).
-export([watch/0, clear/0, span/2, events/0]).

-define(WATCHER, epx_bench_watch).
%% bench.c mirrors these two (RPC_WARMUP + 1, BULK_WARMUP) for CPU per call.
-define(RPC_WARMUP, 500).
-define(BULK_WARMUP, 16).
-define(ACK_TIMEOUT, 600000).

%% OTP release and erts version of this node, for the report's header.
-spec info() -> {string(), string()}.
info() ->
    {erlang:system_info(otp_release), erlang:system_info(version)}.

%% N sequential erpc:call round trips of a trivial BIF on Node, after a
%% warm-up.  Returns the time of the N calls in nanoseconds.
-spec rpc(node(), pos_integer()) -> non_neg_integer().
rpc(Node, N) when is_atom(Node), is_integer(N), N > 0 ->
    Node = erpc:call(Node, erlang, node, []),   % the right node, connected
    calls(Node, ?RPC_WARMUP),
    T0 = erlang:monotonic_time(),
    calls(Node, N),
    T1 = erlang:monotonic_time(),
    erlang:convert_time_unit(T1 - T0, native, nanosecond).

calls(_Node, 0) ->
    ok;
calls(Node, N) ->
    _ = erpc:call(Node, erlang, node, []),
    calls(Node, N - 1).

%% Send Count binaries of Size bytes from this process to a fresh process
%% on Node; the receiver acknowledges the end with the bytes it got.
%% Returns {Bytes, Nanoseconds} from the first send to the acknowledgement
%% (a warm-up of a few binaries goes first, untimed).
-spec bulk(node(), pos_integer(), pos_integer()) ->
          {non_neg_integer(), non_neg_integer()}.
bulk(Node, Count, Size) when is_atom(Node) ->
    Bin = binary:copy(<<16#5a>>, Size),
    Sink = spawn(Node, ?MODULE, sink, []),
    Ref = erlang:monitor(process, Sink),
    try
        send_n(Sink, Bin, ?BULK_WARMUP),
        WarmBytes = ?BULK_WARMUP * Size,
        WarmBytes = ack(Sink, Ref),
        T0 = erlang:monotonic_time(),
        send_n(Sink, Bin, Count),
        Bytes = ack(Sink, Ref),
        T1 = erlang:monotonic_time(),
        {Bytes, erlang:convert_time_unit(T1 - T0, native, nanosecond)}
    after
        Sink ! stop,
        erlang:demonitor(Ref, [flush])
    end.

send_n(_Sink, _Bin, 0) ->
    ok;
send_n(Sink, Bin, N) ->
    Sink ! Bin,
    send_n(Sink, Bin, N - 1).

ack(Sink, Ref) ->
    Sink ! {done, self(), Ref},
    receive
        {ack, Ref, Bytes} -> Bytes;
        {'DOWN', Ref, process, _, Reason} -> error({sink_down, Reason})
    after ?ACK_TIMEOUT ->
            error(no_ack)
    end.

%% The receiving end of bulk/3: counts bytes until asked for them.
-spec sink() -> ok.
sink() ->
    sink(0).

sink(Bytes) ->
    receive
        Bin when is_binary(Bin) -> sink(Bytes + byte_size(Bin));
        {done, From, Ref} -> From ! {ack, Ref, Bytes}, sink(0);
        stop -> ok
    after ?ACK_TIMEOUT ->
            ok
    end.

%% Start (or restart) a registered process that records every nodeup and
%% nodedown this node sees, with os:system_time(microsecond).
-spec watch() -> ok.
watch() ->
    case whereis(?WATCHER) of
        undefined -> ok;
        Old ->
            MRef = erlang:monitor(process, Old),
            exit(Old, kill),
            receive {'DOWN', MRef, process, Old, _} -> ok end
    end,
    Parent = self(),
    Tag = make_ref(),
    Pid = spawn(fun() ->
                        register(?WATCHER, self()),
                        ok = net_kernel:monitor_nodes(true),
                        Parent ! {Tag, watching},
                        watch_loop([])
                end),
    receive
        {Tag, watching} -> ok
    after 10000 ->
            exit(Pid, kill),
            error(watcher_did_not_start)
    end.

watch_loop(Events) ->
    receive
        {nodeup, Node} ->
            watch_loop([{up, Node, os:system_time(microsecond)} | Events]);
        {nodedown, Node} ->
            watch_loop([{down, Node, os:system_time(microsecond)} | Events]);
        {clear, From, Ref} ->
            From ! {Ref, ok},
            watch_loop([]);
        {get, From, Ref} ->
            From ! {Ref, lists:reverse(Events)},
            watch_loop(Events);
        _ ->
            watch_loop(Events)
    end.

call_watcher(What) ->
    Ref = make_ref(),
    ?WATCHER ! {What, self(), Ref},
    receive {Ref, Reply} -> Reply after 10000 -> error(watcher_silent) end.

%% Every recorded event, oldest first: [{up | down, Node, Microseconds}].
-spec events() -> [{up | down, node(), integer()}].
events() ->
    call_watcher(get).

%% Forget every recorded event.
-spec clear() -> ok.
clear() ->
    call_watcher(clear).

%% Over the first event of kind Kind (up | down) for each node in Nodes:
%% {how many of Nodes had one, earliest time, latest time} (times in
%% microseconds of os:system_time; {0,0,0} when none had one).
-spec span(up | down, [node()]) -> {non_neg_integer(), integer(), integer()}.
span(Kind, Nodes) ->
    Events = call_watcher(get),
    Firsts = [T || N <- Nodes,
                   T <- first([T1 || {K, N1, T1} <- Events, K =:= Kind, N1 =:= N])],
    case Firsts of
        [] -> {0, 0, 0};
        _ -> {length(Firsts), lists:min(Firsts), lists:max(Firsts)}
    end.

first([]) -> [];
first([T | _]) -> [T].
