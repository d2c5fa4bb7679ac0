%% feed: a leader that pushes numbered updates to its followers over its
%% own TCP channel (gen_tcp, 4-byte length prefix), not over the Erlang
%% distribution.  A cluster channel like this one is what a partition that
%% cuts only distribution traffic would miss.
%%
%%     feed:lead()        on the leader: listen, accept followers; -> Port
%%     feed:followers()   on the leader: how many followers are connected
%%     feed:push(From, To) on the leader: send updates From..To to each
%%     feed:follow(Port)  on a follower: connect to the leader; -> ok
%%     feed:received()    on a follower: every update received, in order,
%%                        as text: "1,2,3" (a list of small integers would
%%                        print as a string)
-module(feed).

-export([lead/0, followers/0, push/2, follow/1, received/0]).

-define(TIMEOUT, 10000).

%% ---- the leader ---------------------------------------------------------

lead() ->
    Parent = self(),
    Pid = spawn(fun() ->
                        {ok, L} = gen_tcp:listen(0, [binary, {packet, 4}, {active, false},
                                                     {ip, {127, 0, 0, 1}}, {reuseaddr, true}]),
                        {ok, Port} = inet:port(L),
                        register(feed_leader, self()),
                        Parent ! {self(), Port},
                        Me = self(),
                        spawn_link(fun() -> accept(L, Me) end),
                        leader([])
                end),
    receive {Pid, Port} -> Port after ?TIMEOUT -> error(no_leader) end.

accept(L, Leader) ->
    {ok, S} = gen_tcp:accept(L),
    ok = gen_tcp:controlling_process(S, Leader),
    Leader ! {follower, S},
    accept(L, Leader).

leader(Socks) ->
    receive
        {follower, S} ->
            leader([S | Socks]);
        {count, From} ->
            From ! {count, length(Socks)},
            leader(Socks);
        {push, Ns, From} ->
            [ok = gen_tcp:send(S, integer_to_binary(N)) || N <- Ns, S <- Socks],
            From ! pushed,
            leader(Socks)
    end.

followers() ->
    feed_leader ! {count, self()},
    receive {count, N} -> N after ?TIMEOUT -> error(no_leader) end.

%% The sends only queue the bytes: across a partition they wait in the
%% socket, as they would on a real network.
push(From, To) ->
    feed_leader ! {push, lists:seq(From, To), self()},
    receive pushed -> ok after ?TIMEOUT -> error(no_leader) end.

%% ---- a follower -----------------------------------------------------------

follow(Port) ->
    Parent = self(),
    Pid = spawn(fun() ->
                        {ok, S} = gen_tcp:connect({127, 0, 0, 1}, Port,
                                                  [binary, {packet, 4}, {active, true}]),
                        register(feed_follower, self()),
                        Parent ! {self(), connected},
                        follower(S, [])
                end),
    receive {Pid, connected} -> ok after ?TIMEOUT -> error(not_connected) end.

follower(S, Got) ->
    receive
        {tcp, S, Bin} ->
            follower(S, [binary_to_integer(Bin) | Got]);
        {tcp_closed, S} ->
            follower(closed, Got);
        {received, From} ->
            From ! {received, lists:reverse(Got)},
            follower(S, Got)
    end.

received() ->
    feed_follower ! {received, self()},
    receive
        {received, L} -> lists:flatten(lists:join($,, [integer_to_list(N) || N <- L]))
    after ?TIMEOUT -> error(no_follower)
    end.
