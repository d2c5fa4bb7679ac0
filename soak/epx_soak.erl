%% epx_soak: the in-node half of `make soak` (soak/soak.c).
%%
%% Every node of the soak cluster runs one of these.  It sends checksummed,
%% sequence-numbered messages to every other node without pause, one sender
%% process per peer, and receives and checks what the others send:
%%
%%   {epx_soak, From, Phase, Seq, SentUs, Payload, Md5}
%%       Md5 = erlang:md5(Payload); Seq counts 1, 2, ... per (From -> this
%%       node); Phase is the soak phase the message was sent in; SentUs is
%%       os:system_time(microsecond) (one host, one clock).
%%   {epx_soak_mark, From, Phase, LastSeq}
%%       From has sent everything of the phases before Phase (LastSeq is its
%%       last Seq so far).  Sent by a sender when the driver moves it to
%%       Phase, and again whenever the driver asks (a mark can be lost too).
%%
%% The receiver checks, per sender: the checksum, that Seq only grows (a Seq
%% seen before is a duplicate, a smaller unseen one is out of order), and
%% counts gaps.  Every counter is kept per (peer, phase) in a public ETS
%% table that stats/0 reads without asking any process, so the driver can
%% always read them, even while a sender is suspended on a held connection.
%%
%% Sends are plain `{epx_soak_rx, Node} ! Msg`: it auto-connects after a
%% nodedown, never raises, and suspends the sender while the connection is
%% busy (a held cut): that is what a real application does.
-module(epx_soak).

-export([start/3, phase/2, remark/0, marks/1, stats/0, violations/0, downs/0, gaps/0,
         sent_info/2, set_ticktime/1, ticktime/0]).
%% spawned
-export([init/4, sender/4, receiver/2, watcher/1]).

-define(TAB, epx_soak).
-define(RX, epx_soak_rx).
-define(POOL_BYTES, (2 * 1024 * 1024)).
-define(MAX_VIOLATIONS, 20).
-define(MAX_GAPS, 50).
-define(HIST, 8192).  % what each sender remembers of its last messages
-define(COLS, 10).   % counters per (phase, peer) in stats/0

%% Start the soak on this node.  Nodes: every node of the cluster, in
%% order (this one included); NPhases: the phases the driver will use;
%% Opts: #{interval_ms := I, max_size := Bytes, seed := S, inject := F}.
%% F (default none) makes every sender misbehave on purpose about once in
%% 100 messages, to show that the checks catch it: dup (send a message
%% twice), corrupt (a wrong md5), reorder (swap two messages), drop (count
%% a message as sent without sending it).  Returns ok once every process
%% is running.  The senders wait in phase 1: phase(1, true) starts them,
%% once every node has its receiver (a message to a name that is not
%% registered yet is dropped silently, with no nodedown).
-spec start([node()], pos_integer(), map()) -> ok.
start(Nodes, NPhases, Opts) when is_list(Nodes), is_integer(NPhases) ->
    Caller = self(),
    Ref = make_ref(),
    Pid = spawn(?MODULE, init, [Caller, Ref, Nodes, {NPhases, Opts}]),
    MRef = erlang:monitor(process, Pid),
    receive
        {Ref, ok} -> erlang:demonitor(MRef, [flush]), ok;
        {'DOWN', MRef, process, Pid, Reason} -> error({epx_soak_start, Reason})
    after 60000 -> error(epx_soak_start_timeout)
    end.

init(Caller, Ref, Nodes, {NPhases, Opts}) ->
    register(?MODULE, self()),
    process_flag(trap_exit, true),
    ets:new(?TAB, [named_table, public, set, {write_concurrency, true},
                   {read_concurrency, true}]),
    Peers = [N || N <- Nodes, N =/= node()],
    Index = maps:from_list(lists:zip(Nodes, lists:seq(1, length(Nodes)))),
    ets:insert(?TAB, [{nodes, Nodes}, {nphases, NPhases}, {index, Index},
                      {crashes, 0}, {junk, 0}, {violations, 0}]),
    [ets:insert(?TAB, {{C, P, J}, 0})
     || P <- lists:seq(1, NPhases + 1), J <- lists:seq(1, length(Nodes)),
        C <- [sent, sent_bytes, rx, rx_bytes, gaps, missing, dups, reorders, bad_md5,
              max_lat]],
    [ets:insert(?TAB, {{C, P}, 0})
     || P <- lists:seq(1, NPhases + 1), C <- [nodedown, nodeup]],
    Seed = maps:get(seed, Opts, 1),
    Interval = maps:get(interval_ms, Opts, 100),
    MaxSize = max(1, min(?POOL_BYTES, maps:get(max_size, Opts, 1024 * 1024))),
    Rx = spawn_link(?MODULE, receiver, [Index, #{}]),
    register(?RX, Rx),
    W = spawn_link(?MODULE, watcher, [1]),
    Inject = maps:get(inject, Opts, none),
    Senders = [spawn_link(?MODULE, sender,
                          [Peer, maps:get(Peer, Index),
                           #{interval => Interval, max => MaxSize, inject => Inject,
                             seed => {Seed, maps:get(node(), Index), maps:get(Peer, Index)}},
                           1])
               || Peer <- Peers],
    Caller ! {Ref, ok},
    loop(#{senders => Senders, watcher => W, rx => Rx}).

loop(S = #{senders := Senders, watcher := W}) ->
    receive
        {phase, P, Sending} ->
            [Pid ! {phase, P, Sending} || Pid <- Senders],
            W ! {phase, P},
            loop(S);
        remark ->
            [Pid ! remark || Pid <- Senders],
            loop(S);
        {'EXIT', _Pid, normal} ->
            loop(S);
        {'EXIT', Pid, Reason} ->
            ets:update_counter(?TAB, crashes, 1),
            violation({crash, Pid, Reason}),
            loop(S);
        _ ->
            loop(S)
    end.

%% Move every sender to phase P (Sending = false: stop sending data); each
%% sends its mark for P to its peer.
-spec phase(pos_integer(), boolean()) -> ok.
phase(P, Sending) ->
    ?MODULE ! {phase, P, Sending},
    ok.

%% Every sender sends its current mark again.
-spec remark() -> ok.
remark() ->
    ?MODULE ! remark,
    ok.

%% How many peers' marks for phase P (or later) this node has received.
-spec marks(pos_integer()) -> non_neg_integer().
marks(P) ->
    [{nodes, Nodes}] = ets:lookup(?TAB, nodes),
    length([N || N <- Nodes, N =/= node(),
                 case ets:lookup(?TAB, {mark, N}) of
                     [{_, M}] -> M >= P;
                     [] -> false
                 end]).

%% Every counter, as a tuple of integers (easy to read from C):
%% {stats, NNodes, NPhases, Crashes, Junk, Violations,
%%  then for each phase P in 1..NPhases+1: NodeDowns, NodeUps,
%%    then for each node J in 1..NNodes (this node's own slot stays 0):
%%      Sent, SentBytes (to J), Rx, RxBytes, Gaps, Missing, Dups, Reorders,
%%      BadMd5, MaxLatencyUs (from J)}
-spec stats() -> tuple().
stats() ->
    [{nodes, Nodes}] = ets:lookup(?TAB, nodes),
    [{nphases, NP}] = ets:lookup(?TAB, nphases),
    V = fun(K) -> ets:lookup_element(?TAB, K, 2) end,
    N = length(Nodes),
    Per = [[V({nodedown, P}), V({nodeup, P})
            | [V({C, P, J}) || J <- lists:seq(1, N),
                               C <- [sent, sent_bytes, rx, rx_bytes, gaps, missing, dups,
                                     reorders, bad_md5, max_lat]]]
           || P <- lists:seq(1, NP + 1)],
    list_to_tuple([stats, N, NP, V(crashes), V(junk), V(violations) | lists:append(Per)]).

%% The first violations seen, as readable strings.
-spec violations() -> [string()].
violations() ->
    lists:sort([{K, T} || {{violation, K}, T} <- ets:tab2list(?TAB)]).

%% The nodedowns this node saw, by phase and reason: [{Phase, Reason, Count}].
-spec downs() -> [{pos_integer(), term(), pos_integer()}].
downs() ->
    lists:sort([{P, R, C} || {{down_reason, P, R}, C} <- ets:tab2list(?TAB)]).

%% The first gaps of each phase this node's receiver saw:
%% [{From, Phase, FirstMissing, LastMissing, PrevSentUs, NextSentUs,
%% NextRecvUs}]: the missing messages were sent between PrevSentUs and
%% NextSentUs (os:system_time(microsecond)).
-spec gaps() -> [tuple()].
gaps() ->
    [G || {_, G} <- lists:sort([{K, G} || {{gap, _, _} = K, G} <- ets:tab2list(?TAB)])].

%% What this node's sender to node J (1-based) remembers of message Seq:
%% {Seq, Phase, SentUs, Size}, or none.
-spec sent_info(pos_integer(), pos_integer()) -> tuple() | none.
sent_info(J, Seq) ->
    case ets:lookup(?TAB, {hist, J, Seq rem ?HIST}) of
        [{_, R = {Seq, _, _, _}}] -> R;
        _ -> none
    end.

%% Change net_ticktime; ticktime/0 tells when the change is done.
set_ticktime(T) ->
    net_kernel:set_net_ticktime(T, 1).

ticktime() ->
    net_kernel:get_net_ticktime().

violation(What) ->
    K = ets:update_counter(?TAB, violations, 1),
    case K =< ?MAX_VIOLATIONS of
        true ->
            ets:insert(?TAB, {{violation, K},
                              lists:flatten(io_lib:format("~0tp", [What],
                                                          [{chars_limit, 400}]))});
        false ->
            ok
    end.

%% ---- sender: one per peer ----------------------------------------------

sender(Peer, J, #{interval := I, max := Max, seed := {A, B, C}, inject := Inject}, Phase) ->
    rand:seed(exsss, {A, B * 7919 + 13, C * 104729 + 17}),
    Pool = rand:bytes(?POOL_BYTES),
    sender_loop(#{peer => Peer, j => J, interval => I, max => Max, pool => Pool,
                  phase => Phase, seq => 0, sending => false, inject => Inject,
                  held => none}).

sender_loop(S = #{interval := I}) ->
    Wait = case maps:get(sending, S) of
               true -> rand:uniform(2 * I + 1) - 1;
               false -> infinity
           end,
    receive
        {phase, P, Sending} ->
            S1 = S#{phase := P, sending := Sending},
            send_mark(S1),
            sender_loop(S1);
        remark ->
            send_mark(S),
            sender_loop(S)
    after Wait ->
            sender_loop(send_one(S))
    end.

send_mark(#{peer := Peer, phase := P, seq := Seq}) ->
    {?RX, Peer} ! {epx_soak_mark, node(), P, Seq}.

send_one(S = #{peer := Peer, j := J, max := Max, pool := Pool, phase := P, seq := Seq0}) ->
    Size = payload_size(Max),
    Off = rand:uniform(?POOL_BYTES - Size + 1) - 1,
    Payload = binary:part(Pool, Off, Size),
    Seq = Seq0 + 1,
    Now = os:system_time(microsecond),
    Msg = {epx_soak, node(), P, Seq, Now, Payload, erlang:md5(Payload)},
    ets:insert(?TAB, {{hist, J, Seq rem ?HIST}, {Seq, P, Now, Size}}),
    S1 = case {maps:get(inject, S), rand:uniform(100)} of
             {none, _} -> {?RX, Peer} ! Msg, S;
             {_, R} when R > 1 -> {?RX, Peer} ! Msg, flush_held(S);
             {dup, _} -> {?RX, Peer} ! Msg, {?RX, Peer} ! Msg, S;
             {corrupt, _} -> {?RX, Peer} ! setelement(7, Msg, erlang:md5(<<"x">>)), S;
             {reorder, _} -> S#{held := Msg};
             {drop, _} -> S
         end,
    ets:update_counter(?TAB, {sent, P, J}, 1),
    ets:update_counter(?TAB, {sent_bytes, P, J}, Size),
    S1#{seq := Seq}.

%% reorder: the message held back goes after the next one.
flush_held(S = #{held := none}) -> S;
flush_held(S = #{peer := Peer, held := Msg}) -> {?RX, Peer} ! Msg, S#{held := none}.

%% From 1 byte to Max, spread evenly over the orders of magnitude, and Max
%% itself one time in twenty.
payload_size(Max) ->
    case rand:uniform(20) of
        1 -> Max;
        _ -> max(1, min(Max, trunc(math:pow(Max, rand:uniform()))))
    end.

%% ---- receiver: one per node -------------------------------------------

%% Per sender: {LastSeq, LastSentUs, Ranges}, Ranges the seqs received so
%% far as [{Hi, Lo}], newest first (one range per gap).
receiver(Index, Seen) ->
    receive
        {epx_soak, From, P, Seq, SentUs, Payload, Md5} = Msg
          when is_atom(From), is_integer(P), is_integer(Seq), is_binary(Payload) ->
            case maps:find(From, Index) of
                {ok, J} ->
                    receiver(Index, got(From, J, P, Seq, SentUs, Payload, Md5, Seen));
                error ->
                    junk(Msg),
                    receiver(Index, Seen)
            end;
        {epx_soak_mark, From, P, _LastSeq} when is_atom(From), is_integer(P) ->
            case ets:lookup(?TAB, {mark, From}) of
                [{_, M}] when M >= P -> ok;
                _ -> ets:insert(?TAB, {{mark, From}, P})
            end,
            receiver(Index, Seen);
        Other ->
            junk(Other),
            receiver(Index, Seen)
    end.

junk(Msg) ->
    ets:update_counter(?TAB, junk, 1),
    violation({unexpected_message, Msg}).

got(From, J, P, Seq, SentUs, Payload, Md5, Seen) ->
    Now = os:system_time(microsecond),
    LatUs = Now - SentUs,
    Size = byte_size(Payload),
    case erlang:md5(Payload) of
        Md5 -> ok;
        _ ->
            ets:update_counter(?TAB, {bad_md5, P, J}, 1),
            violation({bad_md5, From, {phase, P}, {seq, Seq}, {size, Size}})
    end,
    ets:update_counter(?TAB, {rx, P, J}, 1),
    ets:update_counter(?TAB, {rx_bytes, P, J}, Size),
    case ets:lookup_element(?TAB, {max_lat, P, J}, 2) of
        M when LatUs > M -> ets:insert(?TAB, {{max_lat, P, J}, LatUs});
        _ -> ok
    end,
    {Last, LastSentUs, Ranges} = maps:get(From, Seen, {0, 0, []}),
    if
        Seq =:= Last + 1 ->
            Seen#{From => {Seq, SentUs, extend(Seq, Ranges)}};
        Seq > Last + 1 ->
            ets:update_counter(?TAB, {gaps, P, J}, 1),
            ets:update_counter(?TAB, {missing, P, J}, Seq - Last - 1),
            K = ets:update_counter(?TAB, {ngaps, P}, 1, {{ngaps, P}, 0}),
            K =< ?MAX_GAPS andalso
                ets:insert(?TAB, {{gap, P, K}, {From, P, Last + 1, Seq - 1, LastSentUs, SentUs,
                                                Now}}),
            Seen#{From => {Seq, SentUs, [{Seq, Seq} | Ranges]}};
        true ->
            case lists:any(fun({Hi, Lo}) -> Seq =< Hi andalso Seq >= Lo end, Ranges) of
                true ->
                    ets:update_counter(?TAB, {dups, P, J}, 1),
                    violation({duplicate, From, {phase, P}, {seq, Seq}, {last, Last}});
                false ->
                    ets:update_counter(?TAB, {reorders, P, J}, 1),
                    violation({out_of_order, From, {phase, P}, {seq, Seq}, {last, Last}})
            end,
            Seen
    end.

extend(Seq, [{Hi, Lo} | Rest]) when Seq =:= Hi + 1 -> [{Seq, Lo} | Rest];
extend(Seq, Ranges) -> [{Seq, Seq} | Ranges].

%% ---- watcher: nodeup / nodedown per phase -------------------------------

watcher(Phase) ->
    ok = net_kernel:monitor_nodes(true, [nodedown_reason]),
    watch(Phase).

watch(Phase) ->
    receive
        {phase, P} ->
            watch(P);
        {nodeup, _Node, _Info} ->
            ets:update_counter(?TAB, {nodeup, Phase}, 1),
            watch(Phase);
        {nodedown, Node, Info} ->
            ets:update_counter(?TAB, {nodedown, Phase}, 1),
            Reason = proplists:get_value(nodedown_reason, Info),
            K = {down_reason, Phase, Reason},
            case ets:insert_new(?TAB, {K, 1}) of
                true -> ok;
                false -> ets:update_counter(?TAB, K, 1)
            end,
            ets:insert(?TAB, {{last_down, Phase}, {Node, Reason}}),
            watch(Phase);
        _ ->
            watch(Phase)
    end.
