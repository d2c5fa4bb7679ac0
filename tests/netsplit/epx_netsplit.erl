%% epx_netsplit: issue 10's reference.  Runs each scenario of the issue's
%% table on two backends and compares what the nodes saw:
%%   real     three network namespaces on a bridge (tests/netsplit/netsplit.sh
%%            makes them), one OTP epmd and one node per namespace
%%            (nX@10.99.0.X); a cut is `iptables -j DROP` on INPUT and OUTPUT
%%            inside n1's namespace (see rules/1), a heal deletes those rules;
%%   epmdpxy  the same nodes on loopback behind a private daemon in hold mode,
%%            cut and healed over its control port.
%%
%% One module, two halves:
%%   - the controller (`erl -noshell -run epx_netsplit main`, a plain
%%     non-distributed node) starts every process, drives each node over its
%%     stdin/stdout through epx_agent (so a partition never cuts the
%%     controller off), times the cut and the heal, and analyses;
%%   - the node side (n_* functions), loaded into every node with -pa and
%%     called through the agent: recorders, streams, pings, dumps.
%% Every time is os:system_time(microsecond): one clock for every process
%% on the machine.  Configuration comes from the environment (see config/0
%% and mk/netsplit.mk).
-module(epx_netsplit).

-export([main/0, compare_main/0]).
-export([n_init/0, n_connect/1, n_nodes/0, n_stream/3, n_trickle/2, n_async/2, n_stop/0, n_drain/3,
         n_dump/1]).

-define(TICK_MS, 5).          % the stream sends one batch every 5 ms
-define(GAP_US, 100000).      % a receive gap longer than this is a stall
-define(RESUME_SLACK_MS, 150).
-define(PAIR, [n1, n2, n3]).

%% ===================================================================
%% Scenarios: issue 10's rows.  Times in ms from the cut.  `cut` is
%% `both` (n1 | n2,n3, both ways) or `oneway` (n1 -> n2 only); `heal` is
%% when the block lifts; `acts` run on a node at a time (at the heal time
%% they run just after it); `until` ends the observation.
%% ===================================================================
rows() ->
    [#{name => "blip-1.5", cut => both, heal => 1500, until => 5600, acts => []},
     #{name => "blip-2.0", cut => both, heal => 2000, until => 5600, acts => []},
     #{name => "blip-2.5", cut => both, heal => 2500, until => 5600, acts => []},
     #{name => "blip-3.0", cut => both, heal => 3000, until => 5600, acts => []},
     #{name => "cut-3.3", cut => both, heal => 3300, until => 8000, acts => []},
     #{name => "heal-3.9+connect", cut => both, heal => 3900, until => 9000,
       acts => [{3900, n1, {connect, n2}}, {3900, n1, {connect, n3}}]},
     %% The ping starts after the tick timeout (the link is gone), so it is
     %% a new connection attempt across the cut; healed 1.5 s / 5.5 s later.
     #{name => "ping-pending-1.5", cut => both, heal => 7000, until => 13500,
       acts => [{5500, n1, {ping, n2}}]},
     #{name => "ping-pending-5.5", cut => both, heal => 11000, until => 13500,
       acts => [{5500, n1, {ping, n2}}]},
     %% n1 and n2 each time out on their own tick: whichever is first, global
     %% drops its n3 link (swap: the outcome is compared up to n1 <-> n2).
     #{name => "oneway-n1-n2", cut => oneway, heal => 6000, until => 10000, acts => [],
       swap => {n1, n2}},
     %% names of n2's host at 1 s: this kernel retries the SYN 1, 2, 3, 4,
     %% 5, 7 s later (tcp_syn_linear_timeouts); the heal at 7.5 s lets the
     %% one at 8 s through.
     #{name => "long-cut+names", cut => both, heal => 7500, until => 9000,
       acts => [{1000, n1, {names, n2}}]}].

%% ===================================================================
%% Controller
%% ===================================================================

%% Entry point: runs, compares, halts with 0 (all rows as expected),
%% 1 (a row differs and is not a known difference) or 2 (a run failed).
main() ->
    ok = io:setopts(standard_io, [{encoding, unicode}]),
    Code = try run_all(config())
           catch C:R:St ->
                   io:format(standard_error, "netsplit: ~0tp:~0tp~n~tp~n", [C, R, St]),
                   2
           end,
    halt(Code).

%% Entry point: compares the results already in $NETSPLIT_OUT again.
compare_main() ->
    ok = io:setopts(standard_io, [{encoding, unicode}]),
    Cfg = config(),
    Code = case file:consult(filename:join(maps:get(out, Cfg), "results.terms")) of
               {ok, Rs} -> compare(Rs, Cfg);
               {error, E} ->
                   io:format(standard_error, "netsplit: no results: ~tp~n", [E]),
                   2
           end,
    halt(Code).

config() ->
    Out = filename:absname(env("NETSPLIT_OUT", "build/netsplit")),
    Rows = case env("NETSPLIT_ROWS", "all") of
               "all" -> rows();
               Names ->
                   Want = string:lexemes(Names, ", "),
                   [R || R = #{name := N} <- rows(), lists:member(N, Want)]
           end,
    #{backends => [list_to_atom(B) || B <- string:lexemes(env("NETSPLIT_BACKENDS", "real,epmdpxy"), ", ")],
      repeat => list_to_integer(env("NETSPLIT_REPEAT", "1")),
      rows => Rows,
      out => Out,
      epmdpxy => filename:absname(env("EPX_EPMDPXY", "build/epmdpxy")),
      agent => filename:absname(env("EPX_AGENT_DIR", "build/agent")),
      beams => filename:dirname(code:which(?MODULE)),
      ns => env("NETSPLIT_NS", "epxns"),
      known => env("NETSPLIT_KNOWN", ""),
      rate => list_to_integer(env("NETSPLIT_RATE", "2000")),
      trickle => list_to_integer(env("NETSPLIT_TRICKLE", "50")),
      payload => list_to_integer(env("NETSPLIT_PAYLOAD", "24")),
      ticktime => env("NETSPLIT_TICKTIME", "4"),
      hold => env("NETSPLIT_HOLD", ""),
      cut => cut_where(env("NETSPLIT_CUT", "host")),
      retry => env("NETSPLIT_RETRY", "1") =/= "0"}.

cut_where("host") -> host;
cut_where("network") -> network;
cut_where(Other) ->
    io:format(standard_error, "netsplit: NETSPLIT_CUT is host or network, not ~tp~n", [Other]),
    halt(2).

env(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        "" -> Default;
        V -> V
    end.

run_all(Cfg = #{out := Out, backends := Bs, repeat := Rep, rows := Rows}) ->
    ok = filelib:ensure_dir(filename:join([Out, "run", "x"])),
    [file:delete(filename:join(Out, F)) || F <- ["results.jsonl", "results.terms"]],
    io:format("netsplit: ~w row(s) x ~w backend(s) x ~w repetition(s); load ~ts~n",
              [length(Rows), length(Bs), Rep, loadavg()]),
    States = [{B, backend_up(B, Cfg)} || B <- Bs],
    T0 = erlang:monotonic_time(millisecond),
    try
        Results = [run_row_retry(S, Row, R, Cfg)
                   || R <- lists:seq(1, Rep), Row <- Rows, S <- States],
        Results1 = retry_differing(Results, States, Cfg),
        Secs = (erlang:monotonic_time(millisecond) - T0) / 1000,
        io:format("netsplit: scenarios took ~.1f s; load ~ts~n", [Secs, loadavg()]),
        Code = compare(Results1, Cfg),
        case [x || #{error := _} <- Results] of
            [] -> Code;
            _ -> 2
        end
    after
        [backend_down(S) || {_, S} <- States]
    end.

%% NETSPLIT_RETRY (default 1): rows that differ and are not listed as
%% known are run again, as many times, and judged on the new runs alone.
%% The real partition is itself not deterministic to the last detail (a
%% retransmission may land on the heal, a node's tick phase decides who
%% times out first); a systematic difference differs again.
retry_differing(Results, States, Cfg = #{repeat := Rep, rows := Rows}) ->
    Known = known(Cfg),
    Bad = [Name || #{name := N} <- Rows, Name <- [list_to_binary(N)],
                   not lists:member(Name, Known),
                   differ =:= row_verdict(Name, [R || R = #{row := X} <- Results, X =:= Name])],
    case {Bad, maps:get(retry, Cfg)} of
        {[], _} -> Results;
        {_, false} -> Results;
        _ ->
            io:format("netsplit: ~ts differed; running ~ts once more~n",
                      [lists:join(", ", Bad), case Bad of [_] -> "it"; _ -> "them" end]),
            Again = [run_row_retry(S, Row, Rep + R, Cfg)
                     || R <- lists:seq(1, Rep), Row = #{name := N} <- Rows,
                        lists:member(list_to_binary(N), Bad), S <- States],
            [R || R = #{row := X} <- Results, not lists:member(X, Bad)] ++ Again
    end.

row_verdict(Row, Rs) ->
    Real = [R || R = #{backend := real} <- Rs],
    Pxy = [R || R = #{backend := epmdpxy} <- Rs],
    case Real =/= [] andalso Pxy =/= [] andalso differences(Row, Real, Pxy) =/= [] of
        true -> differ;
        false -> same
    end.

loadavg() ->
    case file:read_file("/proc/loadavg") of
        {ok, B} -> string:trim(lists:flatten(lists:join(" ", lists:sublist(string:lexemes(binary_to_list(B), " "), 3))));
        _ -> "?"
    end.

%% --- one row on one backend -------------------------------------------

%% A run that fails (a node that did not start in time on a loaded machine,
%% say) is tried once more; the second failure is the result.
run_row_retry(S, Row, Rep, Cfg) ->
    R = case run_row(S, Row, Rep, Cfg) of
            #{error := _} -> run_row(S, Row, Rep, Cfg);
            R1 -> R1
        end,
    save(R, Cfg),
    R.

run_row({B, BS}, Row = #{name := Name}, Rep, Cfg) ->
    io:format("netsplit: ~ts on ~w (run ~w) ... ", [Name, B, Rep]),
    Load = loadavg(),
    Base = #{row => list_to_binary(Name), backend => B, rep => Rep, cut => maps:get(cut, Cfg),
             load => list_to_binary(Load)},
    Nodes = start_nodes(BS, Cfg),
    R = try scenario(BS, Row, Nodes, Rep, Cfg) of
            M -> maps:merge(Base, M)
        catch C:E:St ->
                io:format(standard_error, "~nnetsplit: ~ts on ~w: ~0tp:~0tp ~0tp~n",
                          [Name, B, C, E, St]),
                Base#{error => iolist_to_binary(io_lib:format("~0tp:~0tp", [C, E]))}
        after
            heal_all(BS),
            stop_nodes(Nodes)
        end,
    io:format("~ts~n", [brief(R)]),
    R.

save(R, #{out := Out}) ->
    ok = file:write_file(filename:join(Out, "results.jsonl"), [json(R), $\n], [append]),
    ok = file:write_file(filename:join(Out, "results.terms"),
                         unicode:characters_to_binary(io_lib:format("~0tp.~n", [R])), [append]).

brief(#{error := E}) -> ["ERROR ", E];
brief(R) -> cell(R, [R]).

scenario(BS, Row, Nodes, Rep, Cfg) ->
    #{name := Name, cut := Cut, heal := HealAt, until := Until, acts := Acts} = Row,
    [N1, N2, N3] = [maps:get(I, Nodes) || I <- ?PAIR],
    [ok = call(N, "epx_netsplit:n_init()") || N <- [N1, N2, N3]],
    ok = call(N1, fmt("epx_netsplit:n_connect(~0p)", [[name(N2), name(N3)]])),
    ok = call(N2, fmt("epx_netsplit:n_connect(~0p)", [[name(N3)]])),
    wait_until(fun() -> lists:all(fun(N) -> length(call(N, "epx_netsplit:n_nodes()")) == 2 end,
                                  [N1, N2, N3])
               end, 20000, "a full mesh of n1, n2, n3"),
    [ok = call(N, "global:sync()", 20000) || N <- [N1, N2, N3]],
    #{rate := Rate, payload := Pad} = Cfg,
    ok = call(N1, fmt("epx_netsplit:n_stream(~0p, ~w, ~w)", [name(N2), Rate, Pad])),
    ok = call(N2, fmt("epx_netsplit:n_stream(~0p, ~w, ~w)", [name(N1), Rate, Pad])),
    %% A trickle both ways on n1-n3, so that link's loss starts at the cut
    %% as the streams' does, not at its next tick: that tick's phase (0-1 s
    %% after the cut) otherwise decides, on both backends, whether the link
    %% outlives a 2.5-3.3 s cut and so which links `global` drops.
    #{trickle := Trickle} = Cfg,
    [ok = call(A, fmt("epx_netsplit:n_trickle(~0p, ~w)", [name(B), Trickle]))
     || Trickle > 0, {A, B} <- [{N1, N3}, {N3, N1}]],
    Start = now_us(),
    sleep_until(Start + 600000),           % the streams run steadily first
    {TCut, CutExec} = cut(BS, Cut),
    Plan = lists:sort([{HealAt, 0, heal}, {Until, 2, stop}
                       | [{At, 1, {I, A}} || {At, I, A} <- Acts]]),
    {THeal, HealExec} = run_plan(Plan, TCut, BS, Nodes, undefined),
    %% Stop both senders, then give what is in flight up to 2 s to arrive,
    %% so that the end of the run is not counted as lost.
    Last1 = call(N1, "epx_netsplit:n_stop()", 15000),
    Last2 = call(N2, "epx_netsplit:n_stop()", 15000),
    _ = call(N2, fmt("epx_netsplit:n_drain(n1, ~w, 2000)", [Last1]), 5000),
    _ = call(N1, fmt("epx_netsplit:n_drain(n2, ~w, 2000)", [Last2]), 5000),
    Files = [{I, filename:join([maps:get(out, Cfg), "run",
                                fmt("~ts-~w-~ts-~w.bin", [bs_kind(BS), Rep, Name, I])])}
             || I <- ?PAIR],
    [ok = call(maps:get(I, Nodes), fmt("epx_netsplit:n_dump(~0p)", [F]), 30000)
     || {I, F} <- Files],
    Dumps = maps:from_list([{I, read_dump(F)} || {I, F} <- Files]),
    maps:merge(analyse(Dumps, TCut, THeal, Cfg),
               #{cut_ms => HealAt, cut_exec_ms => CutExec, heal_exec_ms => HealExec,
                 heal_late_ms => round((THeal - TCut) / 1000) - HealAt}).

%% Runs the plan's steps at their times; returns the heal's {time, exec ms}.
run_plan([], _TCut, _BS, _Nodes, Heal) ->
    Heal;
run_plan([{At, _, Step} | Rest], TCut, BS, Nodes, Heal) ->
    sleep_until(TCut + At * 1000),
    case Step of
        heal -> run_plan(Rest, TCut, BS, Nodes, heal(BS));
        stop -> run_plan(Rest, TCut, BS, Nodes, Heal);
        {I, {Kind, Peer}} ->
            Arg = case Kind of
                      names -> host(BS, Peer);
                      _ -> name(maps:get(Peer, Nodes))
                  end,
            ok = call(maps:get(I, Nodes), fmt("epx_netsplit:n_async(~0p, ~0p)", [Kind, Arg])),
            run_plan(Rest, TCut, BS, Nodes, Heal)
    end.

read_dump(File) ->
    {ok, B} = file:read_file(File),
    ok = file:delete(File),
    binary_to_term(B).

now_us() -> os:system_time(microsecond).

sleep_until(T) ->
    case T - now_us() of
        D when D > 0 -> timer:sleep((D + 999) div 1000);
        _ -> ok
    end.

%% Polls Fun until it returns true; fails naming What after Ms.
wait_until(Fun, Ms, What) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    wait_until_(Fun, Deadline, What).
wait_until_(Fun, Deadline, What) ->
    case Fun() of
        true -> ok;
        _ ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> error({timeout, What});
                false -> timer:sleep(20), wait_until_(Fun, Deadline, What)
            end
    end.

fmt(F, A) -> lists:flatten(io_lib:format(F, A)).

%% --- backends ----------------------------------------------------------
%% A backend state is a map: kind, plus what it needs to start nodes, cut
%% and heal.  Every OS process started is written to $OUT/pids, so that
%% netsplit.sh can end it if this controller dies.

backend_up(real, Cfg = #{ns := Ns}) ->
    Ip = exe("ip"),
    Epmd = exe("epmd"),
    Ports = [begin
                 NsI = fmt("~ts-n~w", [Ns, I]),
                 P = spawn_logged(Ip, ["netns", "exec", NsI, Epmd],
                                  [{"ERL_EPMD_PORT", false}], fmt("epmd-n~w", [I]), Cfg),
                 {I, NsI, P}
             end || I <- [1, 2, 3]],
    [wait_until(fun() -> run(Ip, ["netns", "exec", NsI, Epmd, "-names"]) == 0 end,
                10000, "epmd in " ++ NsI) || {_, NsI, _} <- Ports],
    #{kind => real, ip => Ip, ns => Ns, epmds => Ports, cfg => Cfg,
      cookie => cookie()};
%% NETSPLIT_HOLD: knobs for MODE hold ("held_rcvbuf=4096 rto=200"), to calibrate.
backend_up(epmdpxy, Cfg = #{epmdpxy := Exe}) ->
    P = spawn_logged(Exe, ["--port", "0", "--control", "0"], [], "epmdpxy", Cfg),
    {Epmd, Ctl} = receive
                      {P, {data, {eol, <<"READY epmd=", Rest/binary>>}}} ->
                          [E, <<"control=", C/binary>>] = binary:split(Rest, <<" ">>),
                          {binary_to_integer(E), binary_to_integer(C)}
                  after 10000 -> error({timeout, "READY from epmdpxy"})
                  end,
    {ok, S} = gen_tcp:connect({127, 0, 0, 1}, Ctl, [binary, {packet, line}, {active, false}]),
    BS = #{kind => epmdpxy, port => P, epmd => Epmd, ctl => S, cfg => Cfg,
           cookie => cookie()},
    <<"OK hold", _/binary>> = control(BS, "MODE hold " ++ maps:get(hold, Cfg)),
    BS.

backend_down(#{kind := real, epmds := Ps}) ->
    %% epmd does not read its stdin: tell it to go.
    [os:cmd("kill " ++ integer_to_list(Pid))
     || {_, _, P} <- Ps, {os_pid, Pid} <- [erlang:port_info(P, os_pid)]],
    [stop_port(P, 5000) || {_, _, P} <- Ps];
backend_down(BS = #{kind := epmdpxy, port := P}) ->
    catch control(BS, "SHUTDOWN"),
    stop_port(P, 5000).

bs_kind(#{kind := K}) -> K.

exe(Name) ->
    case os:find_executable(Name) of
        false -> error({not_found, Name});
        Path -> Path
    end.

cookie() ->
    "epxns" ++ integer_to_list(erlang:unique_integer([positive])) ++
        integer_to_list(rand:uniform(1 bsl 40)).

%% Runs a command to its end; returns its exit status.
run(Exe, Args) ->
    P = open_port({spawn_executable, Exe}, [{args, Args}, exit_status, stderr_to_stdout, binary]),
    run_wait(P).
run_wait(P) ->
    receive
        {P, {data, _}} -> run_wait(P);
        {P, {exit_status, S}} -> S
    after 20000 -> error({timeout, "a command"})
    end.

%% Starts a long-lived process with its stderr in $OUT/run/<Log>.log and
%% its pid recorded; stdout comes to us line by line.
spawn_logged(Exe, Args, Env, Log, #{out := Out}) ->
    LogFile = filename:join([Out, "run", Log ++ ".log"]),
    P = open_port({spawn_executable, "/bin/sh"},
                  [{args, ["-c", "exec \"$@\" 2>>\"$EPXNS_LOG\"", "sh", Exe | Args]},
                   {env, [{"EPXNS_LOG", LogFile} | Env]},
                   {line, 65536}, binary, exit_status, use_stdio]),
    {os_pid, Pid} = erlang:port_info(P, os_pid),
    ok = file:write_file(filename:join(Out, "pids"), [integer_to_list(Pid), $\n], [append]),
    P.

%% Closes a port's stdin and waits for the process to end; kills it after Ms.
stop_port(P, Ms) ->
    OsPid = case erlang:port_info(P, os_pid) of
                {os_pid, X} -> X;
                undefined -> undefined
            end,
    catch port_close(P),
    case OsPid of
        undefined -> ok;
        _ ->
            Alive = fun() -> filelib:is_dir("/proc/" ++ integer_to_list(OsPid)) end,
            case catch wait_until(fun() -> not Alive() orelse zombie(OsPid) end, Ms, "exit") of
                ok -> ok;
                _ -> os:cmd("kill -9 " ++ integer_to_list(OsPid)), ok
            end
    end.

zombie(Pid) ->
    case file:read_file("/proc/" ++ integer_to_list(Pid) ++ "/stat") of
        {ok, B} -> binary:match(B, <<") Z ">>) =/= nomatch;
        _ -> true
    end.

%% Each node has a host of its own on both backends: 10.99.0.X in its
%% namespace, 127.0.0.X behind the daemon (EPMDPORT nX 127.0.0.X: the node's
%% own EPMD port, its proxy listener and NAMES of its host are there).
host(#{kind := real}, I) -> fmt("10.99.0.~c", [lists:last(atom_to_list(I))]);
host(#{kind := epmdpxy}, I) -> fmt("127.0.0.~c", [lists:last(atom_to_list(I))]).

%% --- nodes -------------------------------------------------------------
%% A node is a map: its short id (n1), full name, port.  Started like the
%% fixture starts them (fixture/erlnode.c): -noshell, a cookie, -start_epmd
%% false, a short net_ticktime, one interface, and the agent on stdio.

start_nodes(BS = #{cookie := Cookie}, Cfg = #{agent := Agent, beams := Beams, ticktime := Tick}) ->
    Erl = exe("erl"),
    Started =
        [begin
             Host = host(BS, I),
             Name = atom_to_list(I) ++ "@" ++ Host,
             Iface = "{" ++ lists:join(",", string:lexemes(Host, ".")) ++ "}",
             ErlArgs = ["-noshell", "-name", Name, "-setcookie", Cookie,
                        "-start_epmd", "false", "-kernel", "net_ticktime", Tick,
                        "-kernel", "inet_dist_use_interface", lists:flatten(Iface),
                        "-pa", Agent, "-pa", Beams, "-run", "epx_agent", "start"],
             {Exe, Args, Env} =
                 case BS of
                     #{kind := real, ip := Ip, ns := Ns} ->
                         {Ip, ["netns", "exec", fmt("~ts-~w", [Ns, I]), Erl | ErlArgs],
                          [{"ERL_EPMD_PORT", false}]};
                     #{kind := epmdpxy} ->
                         EP = epmd_port(BS, I, Host),
                         {Erl, ErlArgs, [{"ERL_EPMD_PORT", integer_to_list(EP)}]}
                 end,
             P = spawn_logged(Exe, Args, Env, fmt("~w-~w", [bs_kind(BS), I]), Cfg),
             {I, #{id => I, name => list_to_atom(Name), port => P}}
         end || I <- ?PAIR],
    [await_ready(N) || {_, N} <- Started],
    maps:from_list(Started).

%% The node's own EPMD port on the daemon, on its host address.
epmd_port(BS, I, Host) ->
    Reply = control(BS, fmt("EPMDPORT ~w ~ts", [I, Host])),
    {match, [P]} = re:run(Reply, "^OK \\{.*\"port\":([0-9]+)", [{capture, all_but_first, list}]),
    list_to_integer(P).

await_ready(#{port := P, name := Name}) ->
    receive
        {P, {data, {eol, <<"READY ", _/binary>>}}} -> ok;
        {P, {exit_status, S}} -> error({node_exited, Name, S})
    after 30000 -> error({timeout, {ready, Name}})
    end.

stop_nodes(Nodes) ->
    [stop_port(P, 5000) || #{port := P} <- maps:values(Nodes)],
    ok.

name(#{name := N}) -> N.

call(N, Expr) -> call(N, Expr, 10000).

%% One request to a node's agent; returns the value or fails.
call(#{port := P, name := Name}, Expr, Ms) ->
    port_command(P, [Expr, ".\n"]),
    call_reply(P, Name, Expr, Ms, <<>>).
call_reply(P, Name, Expr, Ms, Acc) ->
    receive
        {P, {data, {noeol, B}}} -> call_reply(P, Name, Expr, Ms, <<Acc/binary, B/binary>>);
        {P, {data, {eol, B}}} ->
            case <<Acc/binary, B/binary>> of
                <<"OK ", V/binary>> -> parse(V);
                <<"ERR ", E/binary>> -> error({agent, Name, Expr, E});
                _Noise -> call_reply(P, Name, Expr, Ms, <<>>)
            end;
        {P, {exit_status, S}} -> error({node_exited, Name, S})
    after Ms -> error({timeout, Name, Expr})
    end.

parse(B) ->
    {ok, Toks, _} = erl_scan:string(binary_to_list(B) ++ "."),
    {ok, T} = erl_parse:parse_term(Toks),
    T.

%% --- cut and heal --------------------------------------------------------
%% Real: the rules go into n1's namespace, INPUT and OUTPUT, in one
%% iptables-restore: one nft transaction, so a cut (and a heal) happens at
%% one instant.  They alone drop every packet between the blocked pairs
%% (n1's own traffic), so the same rules in n2's and n3's namespaces would
%% change nothing but spread that instant over several commands (~40-90 ms
%% each on a loaded machine).  A one-way cut n1 -> n2 drops what n1 sends
%% to n2, its ACKs included, as a path that loses one direction does.
%% Returns {time the cut/heal is complete, ms the command took}: the true
%% instant is within that many ms before.
%%
%% NETSPLIT_CUT=network: the namespace <ns>-hub routes between the nodes
%% and the same cut is FORWARD rules there, so both ends lose what they
%% send in flight, as on a network, and neither sees a local error.

rules(host, both) ->
    [["INPUT", "-s", "10.99.0.2"], ["INPUT", "-s", "10.99.0.3"],
     ["OUTPUT", "-d", "10.99.0.2"], ["OUTPUT", "-d", "10.99.0.3"]];
rules(host, oneway) ->
    [["OUTPUT", "-d", "10.99.0.2"]];
rules(network, both) ->
    [["FORWARD", "-s", "10.99.0.1", "-d", fmt("10.99.0.~w", [J])] || J <- [2, 3]] ++
    [["FORWARD", "-s", fmt("10.99.0.~w", [J]), "-d", "10.99.0.1"] || J <- [2, 3]];
rules(network, oneway) ->
    [["FORWARD", "-s", "10.99.0.1", "-d", "10.99.0.2"]].

%% The namespace the rules go into.
cut_ns(#{cfg := #{cut := host}}) -> "n1";
cut_ns(#{cfg := #{cut := network}}) -> "hub".

cut(BS = #{kind := real, cfg := #{cut := Where}}, Kind) ->
    put(epxns_cut, Kind),
    iptables(BS, cut_ns(BS), "-A", rules(Where, Kind));
cut(BS = #{kind := epmdpxy}, Kind) ->
    put(epxns_cut, Kind),
    T0 = now_us(),
    <<"OK", _/binary>> = control(BS, case Kind of
                                          both -> "CUT n1 n2,n3";
                                          oneway -> "CUT n1 -> n2"
                                      end),
    T1 = now_us(),
    {T1, round((T1 - T0) / 1000)}.

heal(BS = #{kind := real, cfg := #{cut := Where}}) ->
    iptables(BS, cut_ns(BS), "-D", rules(Where, get(epxns_cut)));
heal(BS = #{kind := epmdpxy}) ->
    T0 = now_us(),
    <<"OK", _/binary>> = control(BS, "HEAL"),
    T1 = now_us(),
    {T1, round((T1 - T0) / 1000)}.

%% After every row, whatever happened: no rule is left.
heal_all(#{kind := real, ip := Ip, ns := Ns}) ->
    [0 = run(Ip, ["netns", "exec", fmt("~ts-~ts", [Ns, N]), "iptables", "-F"])
     || N <- ["n1", "n2", "n3", "hub"]],
    ok;
heal_all(BS = #{kind := epmdpxy}) ->
    <<"OK", _/binary>> = control(BS, "HEAL"),
    ok.

iptables(#{ip := Ip, ns := Ns, cfg := #{out := Out}}, In, Op, Rules) ->
    File = filename:join([Out, "run", "rules-" ++ In]),
    Text = ["*filter\n",
            [[Op, " ", lists:join(" ", R), " -j DROP\n"] || R <- Rules],
            "COMMIT\n"],
    ok = file:write_file(File, Text),
    T0 = now_us(),
    0 = run(Ip, ["netns", "exec", fmt("~ts-~ts", [Ns, In]), "iptables-restore", "--noflush", File]),
    T1 = now_us(),
    {T1, round((T1 - T0) / 1000)}.

control(#{ctl := S}, Line) ->
    ok = gen_tcp:send(S, [Line, "\n"]),
    {ok, Reply} = gen_tcp:recv(S, 0, 5000),
    string:trim(Reply).

%% ===================================================================
%% Node side: called through epx_agent; every call returns at once.
%% ===================================================================

%% Starts the recorder (nodeup/nodedown with reasons, busy_dist_port,
%% results of async calls) and the stream receiver.
n_init() ->
    Self = self(),
    Rec = spawn(fun() ->
                        ok = net_kernel:monitor_nodes(true, [nodedown_reason]),
                        _ = erlang:system_monitor(self(), [busy_dist_port]),
                        Self ! {rec_ready, self()},
                        rec_loop([])
                end),
    receive {rec_ready, Rec} -> ok after 5000 -> error(recorder) end,
    register(epx_ns_rec, Rec),
    register(epx_ns_rx, spawn(fun() -> rx_loop([]) end)),
    ok.

rec_loop(Evs) ->
    receive
        {dump, From} -> From ! {rec, lists:reverse(Evs)};
        {nodeup, N, _} -> rec_loop([{now_us(), nodeup, N} | Evs]);
        {nodedown, N, Info} ->
            R = proplists:get_value(nodedown_reason, Info),
            rec_loop([{now_us(), nodedown, N, R} | Evs]);
        {monitor, Pid, busy_dist_port, _Port} ->
            Tx = whereis(epx_ns_tx),
            rec_loop([{now_us(), busy, Pid =:= Tx} | Evs]);
        {async, _, _, _, _, _} = A -> rec_loop([A | Evs]);
        _ -> rec_loop(Evs)
    end.

rx_loop(Got) ->
    receive
        {epx_ns, From, Seq, _Sent, _Pad} -> rx_loop([{From, Seq, now_us()} | Got]);
        {seen, Id, Seq, From} ->
            From ! {seen, lists:any(fun({F, S, _}) -> S >= Seq andalso short_is(F, Id) end, Got)},
            rx_loop(Got);
        {dump, From} -> From ! {rx, lists:reverse(Got)}
    end.

n_connect(Nodes) ->
    [net_kernel:connect_node(N) || N <- Nodes],
    ok.

n_nodes() -> nodes().

%% Streams to Peer's receiver at Rate msg/s with sequence numbers, in
%% batches every 5 ms, sends with `noconnect` (a send never makes a
%% connection; it may suspend on busy_dist_port, which is measured).
%% A late batch is not made up for: the rate is an upper bound.
n_stream(Peer, Rate, Pad) ->
    Per = max(1, Rate * ?TICK_MS div 1000),
    Payload = binary:copy(<<"x">>, Pad),
    Tx = spawn(fun() -> tx_loop(Peer, Per, Payload, 0, erlang:monotonic_time(millisecond), []) end),
    register(epx_ns_tx, Tx),
    ok.

tx_loop(Peer, Per, Pad, Seq, Next, Log) ->
    Wait = max(0, Next - erlang:monotonic_time(millisecond)),
    receive
        {stop, From} ->
            From ! {stopped, lists:max([-1 | [S || {S, _, _, ok} <- lists:sublist(Log, 200)]])},
            tx_stopped(Log)
    after Wait ->
            {Seq1, Log1} = tx_batch(Peer, Pad, Seq, Seq + Per, Log),
            Now = erlang:monotonic_time(millisecond),
            tx_loop(Peer, Per, Pad, Seq1, max(Next + ?TICK_MS, Now), Log1)
    end.

tx_stopped(Log) ->
    receive
        {dump, From} -> From ! {tx, lists:reverse(Log)}
    end.

%% Sends a small message to Peer Rate times a second (`noconnect`, to a
%% name nobody registers: the bytes cross the link and are dropped there).
%% It runs until the node stops.
n_trickle(Peer, Rate) ->
    Every = max(1, 1000 div Rate),
    Pid = spawn(fun() -> trickle(Peer, Every) end),
    register(epx_ns_trickle, Pid),
    ok.

trickle(Peer, Every) ->
    _ = erlang:send({epx_ns_nobody, Peer}, tick, [noconnect]),
    receive stop -> ok after Every -> trickle(Peer, Every) end.

%% Stops the stream; returns the last sequence number sent with `ok`
%% (-1 if none recently), or `suspended` if the sender does not answer
%% within 10 s (stuck on a busy port).
n_stop() ->
    case whereis(epx_ns_tx) of
        undefined -> -1;
        Pid ->
            Pid ! {stop, self()},
            receive {stopped, S} -> S after 10000 -> suspended end
    end.

%% Waits up to Ms for this node's receiver to have seen Seq from node Id
%% (n1, n2); returns whether it did.
n_drain(_Id, Seq, _Ms) when not is_integer(Seq); Seq < 0 -> false;
n_drain(Id, Seq, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    drain(Id, Seq, Deadline).
drain(Id, Seq, Deadline) ->
    epx_ns_rx ! {seen, Id, Seq, self()},
    Seen = receive {seen, B} -> B after 5000 -> false end,
    case Seen orelse erlang:monotonic_time(millisecond) >= Deadline of
        true -> Seen;
        false -> timer:sleep(10), drain(Id, Seq, Deadline)
    end.

tx_batch(_Peer, _Pad, Seq, Seq, Log) ->
    {Seq, Log};
tx_batch(Peer, Pad, Seq, End, Log) ->
    T0 = now_us(),
    R = erlang:send({epx_ns_rx, Peer}, {epx_ns, node(), Seq, T0, Pad}, [noconnect]),
    tx_batch(Peer, Pad, Seq + 1, End, [{Seq, T0, now_us(), R} | Log]).

%% Runs ping / connect_node / names in the background and records when it
%% started, when it answered and what.
n_async(Kind, Arg) ->
    spawn(fun() ->
                  T0 = now_us(),
                  R = case Kind of
                          ping -> net_adm:ping(Arg);
                          connect -> net_kernel:connect_node(Arg);
                          names ->
                              case net_adm:names(Arg) of
                                  {ok, L} -> {ok, lists:sort([N || {N, _} <- L])};
                                  Other -> Other
                              end
                      end,
                  epx_ns_rec ! {async, Kind, Arg, T0, now_us(), R}
          end),
    ok.

%% Stops the stream, collects everything recorded and writes it to File.
%% A sender still suspended on a busy port after 10 s is reported so.
n_dump(File) ->
    Tx = case whereis(epx_ns_tx) of
             undefined -> [];
             Pid -> ask(Pid, tx, 10000)
         end,
    Rx = ask(whereis(epx_ns_rx), rx, 10000),
    Rec = ask(whereis(epx_ns_rec), rec, 10000),
    ok = file:write_file(File, term_to_binary(#{node => node(), tx => Tx, rx => Rx,
                                                events => Rec, nodes => nodes()})).

ask(Pid, Tag, Ms) ->
    Pid ! {dump, self()},
    receive {Tag, V} -> V after Ms -> timeout end.

%% ===================================================================
%% Analysis: one result map per row, backend and repetition.  Times are
%% ms from the cut.
%% ===================================================================

analyse(Dumps, TCut, THeal, _Cfg) ->
    Ms = fun(T) -> round((T - TCut) / 1000) end,
    Short = fun(N) -> list_to_atom(hd(string:split(atom_to_list(N), "@"))) end,
    Dirs = [{D, stream(maps:get(From, Dumps), maps:get(To, Dumps), From, TCut, Ms)}
            || {D, From, To} <- [{'n1>n2', n1, n2}, {'n2>n1', n2, n1}]],
    Events = lists:sort([{element(1, E), I, E} || {I, #{events := Es}} <- maps:to_list(Dumps),
                                                  E <- Es, is_tuple(E), element(1, E) >= TCut]),
    Downs = [#{obs => I, peer => Short(N), at => Ms(T), reason => reason(R)}
             || {_, I, {T, nodedown, N, R}} <- Events],
    Ups = [#{obs => I, peer => Short(N), at => Ms(T)} || {_, I, {T, nodeup, N}} <- Events],
    Busy = [#{node => I, at => Ms(T), queued => queued(maps:get(I, Dumps), TCut, T)}
            || {I, #{events := Es}} <- maps:to_list(Dumps),
               {T, busy, true} <- first_busy(Es, TCut)],
    Async = [#{node => I, kind => K, start => Ms(T0), 'end' => Ms(T1), result => result(R),
               before_heal => T1 < THeal}
             || {I, #{events := Es}} <- maps:to_list(Dumps),
                {async, K, _, T0, T1, R} <- Es],
    Final = maps:from_list([{I, lists:sort([Short(N) || N <- Ns])}
                            || {I, #{nodes := Ns}} <- maps:to_list(Dumps)]),
    #{heal_at => Ms(THeal), streams => maps:from_list(Dirs), nodedowns => Downs,
      nodeups => Ups, busy => Busy, async => Async, final_nodes => Final}.

reason(R) when is_atom(R) -> R;
reason(R) -> list_to_binary(fmt("~0tp", [R])).

result(R) when is_atom(R) -> R;
result({ok, L}) -> list_to_binary(fmt("ok ~0tp", [L]));
result(R) -> list_to_binary(fmt("~0tp", [R])).

first_busy(Es, TCut) ->
    case [E || E = {T, busy, true} <- Es, T >= TCut] of
        [] -> [];
        [B | _] -> [B]
    end.

%% Sends that returned ok after the cut and before the sender was suspended.
queued(#{tx := Tx}, TCut, TBusy) when is_list(Tx) ->
    length([x || {_, T0, T1, ok} <- Tx, T0 >= TCut, T1 =< TBusy]);
queued(_, _, _) -> null.

%% One direction: what was sent and accepted, what arrived, and the first
%% stall after the cut (a gap in arrivals > 100 ms): when it began and when
%% arrivals resumed (null if they did not).
stream(#{tx := Tx}, #{rx := Rx}, From, TCut, Ms) when is_list(Tx), is_list(Rx) ->
    Got = [{S, T} || {F, S, T} <- Rx, short_is(F, From)],
    Ok = [S || {S, _, _, ok} <- Tx],
    Seqs = [S || {S, _} <- Got],
    Uniq = lists:usort(Seqs),
    Lost = length(ordsets:subtract(lists:usort(Ok), Uniq)),
    {Reord, _} = lists:foldl(fun(S, {N, Max}) when S < Max -> {N + 1, Max};
                                (S, {N, _}) -> {N, S}
                             end, {0, -1}, Seqs),
    {Stall, Resume} = stall([T || {_, T} <- Got], TCut),
    #{sent_ok => length(Ok), noconnect => length([x || {_, _, _, noconnect} <- Tx]),
      received => length(Got), lost => Lost, dup => length(Seqs) - length(Uniq),
      reordered => Reord, stall => ms_or_null(Stall, Ms), resume => ms_or_null(Resume, Ms)};
stream(_, _, _, _, _) ->
    #{error => <<"a sender or receiver did not answer (suspended?)">>}.

short_is(Node, Id) -> lists:prefix(atom_to_list(Id) ++ "@", atom_to_list(Node)).

ms_or_null(null, _) -> null;
ms_or_null(T, Ms) -> Ms(T).

stall(Ts, TCut) ->
    After = [T || T <- Ts, T >= TCut - 50000],
    Before = [T || T <- Ts, T < TCut - 50000],
    Prev = case Before of [] -> TCut; _ -> lists:last(Before) end,
    gap(Prev, After).

gap(Prev, []) -> {Prev, null};
gap(Prev, [T | _]) when T - Prev > ?GAP_US -> {Prev, T};
gap(_, [T | Rest]) -> gap(T, Rest).

%% ===================================================================
%% Comparison: per row, the outcome (who saw whom go down and why, ping /
%% connect / names results, busy_dist_port, who sees whom at the end) must
%% be the same on both backends, and each direction's stall and resume
%% times, each ping / connect / names time and each node's busy_dist_port
%% time within 150 ms.  With several repetitions, the most frequent
%% outcome and the median times are compared.
%% ===================================================================

compare(Results, Cfg) ->
    Rows = lists:usort([R || #{row := R} <- Results]),
    Order = [list_to_binary(N) || #{name := N} <- rows()],
    Rows1 = [R || R <- Order, lists:member(R, Rows)] ++ (Rows -- Order),
    Known = known(Cfg),
    Lines = [compare_row(Row, [R || R = #{row := X} <- Results, X =:= Row], Known)
             || Row <- Rows1],
    Table = ["| scenario | real netsplit | epmdpxy hold | verdict |\n",
             "|---|---|---|---|\n",
             [L || {L, _} <- Lines]],
    Reps = lists:max([0 | [N || #{rep := N} <- Results]]),
    %% where the real side was cut: as the results say (netsplit-compare
    %% reads results an earlier run made), else as configured
    Where = case lists:usort([C || #{backend := real, cut := C} <- Results]) of
                [] -> cut_label(maps:get(cut, Cfg));
                [C] -> cut_label(C);
                _ -> "real runs cut in different places (NETSPLIT_CUT changed between them)"
            end,
    Head = io_lib:format("Measured by `make netsplit` (~w run(s) per row and backend, "
                         "net_ticktime ~ts, ~w msg/s each way n1<->n2, ~ts; load ~ts).~n~n",
                         [Reps, maps:get(ticktime, Cfg), maps:get(rate, Cfg), Where, loadavg()]),
    ok = file:write_file(filename:join(maps:get(out, Cfg), "table.md"),
                         unicode:characters_to_binary([Head, Table])),
    io:format("~n~ts~ts~n", [Head, Table]),
    Verdicts = [V || {_, V} <- Lines],
    Bad = [R || {fail, R} <- Verdicts],
    Fixed = [R || {fixed, R} <- Verdicts],
    [io:format("netsplit: ~ts now matches: remove it from the known differences~n", [R])
     || R <- Fixed],
    case Bad of
        [] ->
            io:format("netsplit: every row as expected (~w known difference(s))~n",
                      [length([x || {known, _} <- Verdicts])]),
            0;
        _ ->
            io:format("netsplit: FAIL: rows differ: ~ts~n", [lists:join(", ", Bad)]),
            1
    end.

cut_label(host) -> "the real cut in n1's namespace";
cut_label(network) -> "the real cut in a router namespace between the nodes".

known(#{known := ""}) -> [];
known(#{known := File}) ->
    case file:read_file(File) of
        {ok, B} ->
            [list_to_binary(string:trim(hd(string:split(L, "#"))))
             || L <- string:split(binary_to_list(B), "\n", all),
                string:trim(hd(string:split(L, "#"))) =/= ""];
        {error, E} -> error({known_differences, File, E})
    end.

compare_row(Row, Rs, Known) ->
    Real = [R || R = #{backend := real} <- Rs],
    Pxy = [R || R = #{backend := epmdpxy} <- Rs],
    {Verdict, Text} =
        case {Real, Pxy} of
            {[], _} -> {skip, "epmdpxy only"};
            {_, []} -> {skip, "real only"};
            _ ->
                case differences(Row, Real, Pxy) of
                    [] -> {match, "match"};
                    Ds -> {differ, "differs: " ++ lists:join(", ", Ds)}
                end
        end,
    IsKnown = lists:member(Row, Known),
    V = case {Verdict, IsKnown} of
            {differ, true} -> {known, Row};
            {differ, false} -> {fail, Row};
            {match, true} -> {fixed, Row};
            _ -> {ok, Row}
        end,
    Suffix = case V of
                 {known, _} -> " (known)";
                 {fixed, _} -> " (listed as known: remove)";
                 _ -> ""
             end,
    {io_lib:format("| ~ts | ~ts | ~ts | ~ts~ts |\n",
                   [Row, cell(Real), cell(Pxy), Text, Suffix]), V}.

%% The aspects compared, and which differ.
differences(Row, Real, Pxy) ->
    Canon = fun(Sig) -> canon(Sig, row_swap(Row)) end,
    Errs = [x || #{error := _} <- Real ++ Pxy],
    case Errs of
        [_ | _] -> ["a run failed"];
        [] ->
            Outcome = [{"nodedowns", fun downs_sig/1}, {"ping/connect/names", fun async_sig/1},
                       {"busy_dist_port", fun busy_sig/1}, {"who sees whom at the end", fun final_sig/1}],
            [What || {What, F} <- Outcome,
                     mode([Canon(F(R)) || R <- Real]) =/= mode([Canon(F(R)) || R <- Pxy])]
            ++ [fmt("~ts ~ts", [D, K])
                || D <- ['n1>n2', 'n2>n1'], K <- [stall, resume],
                   not close(median(times(Real, D, K)), median(times(Pxy, D, K)))]
            ++ [fmt("~w ~w time", [N, K])
                || {N, K} <- async_kinds(Real ++ Pxy),
                   not close(median(async_times(Real, N, K)), median(async_times(Pxy, N, K)))]
            ++ [fmt("~w busy_dist_port time", [N])
                || N <- lists:usort([N || #{busy := Bs} <- Real ++ Pxy, #{node := N} <- Bs]),
                   not busy_close(Real, Pxy, N)]
    end.

%% Node N's first busy_dist_port through the daemon is close to the real
%% one of N, or lies within the real side's span between its two ends
%% (150 ms slack).  The span is real: on the real partition the end whose
%% own namespace drops (n1: OUTPUT DROP, its segments never leave) keeps
%% its bytes unsent and coalesced and is suspended at 2.84 s, while the
%% other end's segments leave and are lost in flight, sit in its
%% retransmission queue as small buffers, and fill its send buffer sooner
%% (2.31 s; `ss -tmi`: 61 lost segments, w 57 KB, against 97 KB unsent on
%% n1).  Through a relay on loopback no segment is lost in flight: a full
%% receive buffer answers with a zero window (Linux since 6.x), so both
%% ends behave like the end that drops itself.
busy_close(Real, Pxy, N) ->
    P = median(busy_times(Pxy, N)),
    Ends = [M || M <- [median(busy_times(Real, E)) || E <- ?PAIR], is_number(M)],
    close(median(busy_times(Real, N)), P)
        orelse (is_number(P) andalso Ends =/= []
                andalso P >= lists:min(Ends) - ?RESUME_SLACK_MS
                andalso P =< lists:max(Ends) + ?RESUME_SLACK_MS).

%% Rows where which of two nodes times out first is a coin flip on both
%% backends (their tick phases), and with it which n3 link `global` drops:
%% there the outcomes are compared up to exchanging the two.
row_swap(Row) ->
    case [S || #{name := N, swap := S} <- rows(), list_to_binary(N) =:= Row] of
        [S] -> S;
        [] -> none
    end.

canon(Sig, none) -> Sig;
canon(Sig, {A, B}) -> min(deep_sort(Sig), deep_sort(swap(Sig, A, B))).

swap(A, A, B) -> B;
swap(B, _A, B) -> _A;
swap(L, A, B) when is_list(L) -> [swap(X, A, B) || X <- L];
swap(T, A, B) when is_tuple(T) -> list_to_tuple(swap(tuple_to_list(T), A, B));
swap(M, A, B) when is_map(M) -> maps:from_list(swap(maps:to_list(M), A, B));
swap(X, _, _) -> X.

deep_sort(L) when is_list(L) -> lists:sort([deep_sort(X) || X <- L]);
deep_sort(T) when is_tuple(T) -> list_to_tuple([deep_sort(X) || X <- tuple_to_list(T)]);
deep_sort(M) when is_map(M) -> maps:map(fun(_, V) -> deep_sort(V) end, M);
deep_sort(X) -> X.

%% When node N's sender was first suspended (busy_dist_port) after the
%% cut, per run (null: it was not).
busy_times(Rs, N) ->
    [case [A || #{node := N1, at := A} <- Bs, N1 =:= N] of
         [A | _] -> A;
         [] -> null
     end || #{busy := Bs} <- Rs].

async_kinds(Rs) ->
    lists:usort([{N, K} || #{async := As} <- Rs, #{node := N, kind := K} <- As]).

%% How long each ping / connect_node / names took, per run.
async_times(Rs, N, K) ->
    [case [E - S || #{node := N1, kind := K1, start := S, 'end' := E} <- As, N1 =:= N, K1 =:= K] of
         [D | _] -> D;
         [] -> null
     end || #{async := As} <- Rs].

downs_sig(#{nodedowns := Ds}) ->
    lists:usort([{O, P, Rs} || #{obs := O, peer := P, reason := Rs} <- Ds]).
%% ping and connect_node: the result; names: whether it answered during the
%% cut (across a real cut the other host's epmd cannot be reached).
async_sig(#{async := As}) ->
    lists:sort([{N, K, async_outcome(A)} || A = #{node := N, kind := K} <- As]).
async_outcome(#{kind := names, before_heal := true}) -> answered_in_cut;
async_outcome(#{kind := names}) -> no_answer_in_cut;
async_outcome(#{result := R}) -> R.
busy_sig(#{busy := Bs}) -> lists:sort([N || #{node := N} <- Bs]).
final_sig(#{final_nodes := F}) -> F.

times(Rs, D, K) ->
    [maps:get(K, maps:get(D, S), null) || #{streams := S} <- Rs].

close(null, null) -> true;
close(A, B) when is_number(A), is_number(B) -> abs(A - B) =< ?RESUME_SLACK_MS;
close(_, _) -> false.

mode(L) ->
    Counts = lists:foldl(fun(X, M) -> maps:update_with(X, fun(C) -> C + 1 end, 1, M) end, #{}, L),
    {_, X} = lists:max([{C, X} || {X, C} <- maps:to_list(Counts)]),
    X.

%% The median of the numbers, null when most are null (did not happen).
median(L) ->
    Ns = lists:sort([X || X <- L, is_number(X)]),
    case length(Ns) * 2 > length(L) of
        false -> null;
        true -> lists:nth((length(Ns) + 1) div 2, Ns)
    end.

%% --- the table's cells --------------------------------------------------

cell([]) -> "-";
cell(Rs) -> cell(hd(Rs), Rs).

cell(#{error := _}, _) -> "run failed";
cell(_, Rs) ->
    case [x || #{error := _} <- Rs] of
        [_ | _] -> "run failed";
        [] ->
            Parts = [streams_text(Rs), downs_text(Rs), ups_text(Rs), async_text(Rs),
                     busy_text(Rs), loss_text(Rs), final_text(Rs)],
            lists:join("; ", [P || P <- Parts, P =/= ""])
    end.

%% "3.15 s" or "3.15 s (3.13–3.18)" over the repetitions.
span(L) ->
    case lists:sort([X || X <- L, is_number(X)]) of
        [] -> "never";
        Ns ->
            M = median(Ns),
            Lo = hd(Ns), Hi = lists:last(Ns),
            Miss = length(L) - length(Ns),
            Base = case Lo == Hi of
                       true -> secs(M);
                       false -> fmt("~ts (~ts–~ts)", [secs(M), secs(Lo), secs(Hi)])
                   end,
            case Miss of
                0 -> Base;
                _ -> fmt("~ts, never in ~w/~w", [Base, Miss, length(L)])
            end
    end.

secs(Ms) -> fmt("~.2f s", [Ms / 1000]).

%% "n1>n2 resumes 3.14 s" when the stream stopped at the cut (within
%% 50 ms), else "n2>n1 stalls 4.88 s, resumes never".
streams_text(Rs) ->
    lists:join(", ",
               [begin
                    Stall = times(Rs, D, stall),
                    AtCut = lists:all(fun(X) -> is_number(X) andalso abs(X) =< 50 end, Stall),
                    case AtCut of
                        true -> fmt("~ts resumes ~ts", [D, span(times(Rs, D, resume))]);
                        false -> fmt("~ts stalls ~ts, resumes ~ts",
                                     [D, span(Stall), span(times(Rs, D, resume))])
                    end
                end || D <- ['n1>n2', 'n2>n1']]).

downs_text(Rs) ->
    Sigs = [downs_sig(R) || R <- Rs],
    case mode(Sigs) of
        [] -> fmt("no nodedown~ts", [of_runs(Sigs, [])]);
        Sig ->
            Groups = lists:usort([Rsn || {_, _, Rsn} <- Sig]),
            Txt = [begin
                       Pairs = [fmt("~w>~w", [O, P]) || {O, P, X} <- Sig, X =:= G],
                       At = [A || #{nodedowns := Ds} <- Rs, #{reason := X, at := A} <- Ds, X =:= G],
                       fmt("nodedown ~ts ~ts at ~ts", [lists:join(",", Pairs), to_text(G), span_range(At)])
                   end || G <- Groups],
            [lists:join(", ", Txt), of_runs(Sigs, Sig)]
    end.

ups_text(Rs) ->
    At = [A || #{nodeups := Us} <- Rs, #{at := A} <- Us],
    case At of
        [] -> "";
        _ -> fmt("nodeup after cut at ~ts", [span_range(At)])
    end.

span_range(L) ->
    Ns = lists:sort(L),
    case hd(Ns) == lists:last(Ns) of
        true -> secs(hd(Ns));
        false -> fmt("~ts–~ts", [secs(hd(Ns)), secs(lists:last(Ns))])
    end.

of_runs(Sigs, Sig) ->
    N = length([x || S <- Sigs, S =:= Sig]),
    case N == length(Sigs) of
        true -> "";
        false -> fmt(" (~w/~w runs)", [N, length(Sigs)])
    end.

async_text(Rs) ->
    Kinds = async_kinds(Rs),
    lists:join(", ",
               [begin
                    Done = [{async_outcome(A), E - S} || #{async := As} <- Rs,
                                          A = #{node := N1, kind := K1, start := S, 'end' := E} <- As,
                                          N1 =:= N, K1 =:= K],
                    Res = mode([R || {R, _} <- Done]),
                    fmt("~w ~w: ~ts after ~ts", [N, K, to_text(Res), span_range([D || {_, D} <- Done])])
                end || {N, K} <- Kinds]).

busy_text(Rs) ->
    Bs = [B || #{busy := L} <- Rs, B <- L],
    case Bs of
        [] -> "";
        _ ->
            Q = [X || #{queued := X} <- Bs, is_integer(X)],
            fmt("busy_dist_port on ~ts at ~ts (~ts msgs queued)~ts",
                [lists:join(",", [atom_to_list(N) || N <- lists:usort([N || #{node := N} <- Bs])]),
                 span_range([A || #{at := A} <- Bs]),
                 case Q of [] -> "?"; _ -> fmt("~w–~w", [lists:min(Q), lists:max(Q)]) end,
                 of_runs([busy_sig(R) || R <- Rs], mode([busy_sig(R) || R <- Rs]))])
    end.

%% Lost / duplicated / reordered messages per direction, only when any.
loss_text(Rs) ->
    Per = [{D, K, [maps:get(K, maps:get(D, S), 0) || #{streams := S} <- Rs]}
           || D <- ['n1>n2', 'n2>n1'], K <- [lost, dup, reordered]],
    case [fmt("~ts ~w ~ts", [D, K, minmax(L)]) || {D, K, L} <- Per, lists:max(L) > 0] of
        [] -> "nothing lost, duplicated or reordered";
        Txt -> lists:join(", ", Txt)
    end.

minmax(L) ->
    case {lists:min(L), lists:max(L)} of
        {X, X} -> integer_to_list(X);
        {A, B} -> fmt("~w–~w", [A, B])
    end.

final_text(Rs) ->
    Sigs = [final_sig(R) || R <- Rs],
    F = mode(Sigs),
    Full = maps:from_list([{I, ?PAIR -- [I]} || I <- ?PAIR]),
    case F == Full of
        true -> fmt("full mesh at end~ts", [of_runs(Sigs, F)]);
        false ->
            fmt("at end ~ts~ts",
                [lists:join(" ", [fmt("~w:[~ts]", [I, lists:join(",", [atom_to_list(X) || X <- V])])
                                  || {I, V} <- lists:sort(maps:to_list(F))]),
                 of_runs(Sigs, F)])
    end.

to_text(X) when is_atom(X) -> atom_to_list(X);
to_text(X) when is_binary(X) -> binary_to_list(X);
to_text(X) -> fmt("~0tp", [X]).

%% --- JSON, for results.jsonl ----------------------------------------------
%% Maps are objects, lists arrays, binaries strings, atoms strings (but
%% true/false/null), numbers numbers.

json(M) when is_map(M) ->
    ["{", lists:join(",", [[json(key(K)), ":", json(V)] || {K, V} <- lists:sort(maps:to_list(M))]), "}"];
json(L) when is_list(L) -> ["[", lists:join(",", [json(X) || X <- L]), "]"];
json(true) -> "true";
json(false) -> "false";
json(null) -> "null";
json(A) when is_atom(A) -> json(atom_to_binary(A));
json(N) when is_integer(N) -> integer_to_list(N);
json(F) when is_float(F) -> float_to_list(F, [{decimals, 3}, compact]);
json(B) when is_binary(B) -> [$", [esc(C) || <<C/utf8>> <= B], $"].

key(K) when is_atom(K) -> atom_to_binary(K);
key(K) when is_binary(K) -> K.

esc($") -> "\\\"";
esc($\\) -> "\\\\";
esc(C) when C < 32 -> io_lib:format("\\u~4.16.0b", [C]);
esc(C) -> <<C/utf8>>.
